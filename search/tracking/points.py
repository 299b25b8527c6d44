"""What one Ray result becomes in MLflow: the metric points of one epoch.

The live mirror and the back-fill both log through `points`, so a point written twice (a retry
whose first attempt did commit, a back-fill racing a late live write) is identical in key, value,
timestamp and step — and MLflow's SQL store keeps it once.
"""

from __future__ import annotations

import math

from mlflow.entities import Metric

# Per-epoch values worth a chart; everything else a trial reports is Ray bookkeeping.
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
           "epoch_seconds", "images_per_s", "peak_mem_mb")


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
    return [Metric(k, float(result[k]), ts, step) for k in metrics
            if isinstance(result.get(k), (int, float)) and math.isfinite(result[k])]
