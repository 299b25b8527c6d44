"""What one Ray result becomes in MLflow: the metric points of one epoch.

The live mirror and the back-fill both log through `points`, so a point written twice (a retry
whose first attempt did commit, a back-fill racing a late live write) is identical in key, value,
timestamp and step — and MLflow's SQL store keeps it once.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

from mlflow.entities import Metric

from resnet_core.names import COST_METRICS
from search.spec import objective

# Per-epoch values worth a chart, as a trial reports them, then its costs (params, flops,
# latency_ms, train_seconds: every one an objective may name); everything else it reports is Ray
# bookkeeping.
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
           "epoch_seconds", "images_per_s", "peak_mem_mb") + COST_METRICS

# A reported value whose name in MLflow differs, so that no name there means two things: `lr`
# is the trial's configured learning rate (a param, and `hp.lr` when sampled); what an epoch
# reports is the rate its last optimizer step used, which the schedule has moved since.
MLFLOW_NAMES = {"lr": "lr_last_step"}


def mlflow_key(key: str) -> str:
    """The MLflow metric name of a reported value."""
    return MLFLOW_NAMES.get(key, key)


def step_of(result: dict) -> int:
    """The MLflow step of a result: its epoch (Ray's own counter for a result without one)."""
    return int(result.get("epoch", result.get("training_iteration", 0)))


def timestamp_ms(result: dict) -> int:
    """Ray's time of the result, so the same result always yields the same point; 0 without."""
    return int((result.get("timestamp") or 0) * 1000)


def points(result: dict, metrics: tuple[str, ...] = METRICS) -> list[Metric]:
    """The finite metric values of one result; NaN/inf are left out (a diverged trial says so in
    its outcome tag, and MLflow charts cannot draw them)."""
    step, ts = step_of(result), timestamp_ms(result)
    return [Metric(mlflow_key(k), float(result[k]), ts, step) for k in metrics
            if isinstance(result.get(k), (int, float)) and math.isfinite(result[k])]


def best_point(results: Iterable[dict], metric: str, mode: str) -> Optional[Metric]:
    """A trial's best objective over its epochs, `best_<metric>` (what the leaderboard ranks it
    by; its last epoch's value can be worse), at its last epoch's step and time: computed again
    from the same results, it is the same point, which MLflow keeps once. The parent run's
    `best_<metric>` is the search's, the best of its trials'. None before a finite value."""
    latest = {step_of(result): result for result in results}  # a re-run epoch: the later
    value = objective.best((r.get(metric) for r in latest.values()), mode)
    if value is None:
        return None
    step = max(latest)
    return Metric(f"best_{metric}", value, timestamp_ms(latest[step]), step)
