"""Back-fill: log into MLflow the epochs Ray has and MLflow lacks (writes the writer dropped).

Ray's per-trial results are the source of truth. For each trial, MLflow's history is read per
metric and exactly the missing (metric, epoch) points are logged — with the values the live path
would have logged (`points`), so a late retry of one of them is deduplicated by MLflow.
"""

from __future__ import annotations

from typing import Iterable

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from search.tracking.points import METRICS, points, step_of

BATCH = 1000  # the most metrics MLflow's log_batch accepts in one call


def missing(results: Iterable[dict], have: dict[str, set[int]],
            metrics: tuple[str, ...] = METRICS) -> list[Metric]:
    """The points of `results` whose (metric, step) is not in `have` (metric -> logged steps)."""
    # Ray reports an epoch twice when a trial re-runs it after restoring a checkpoint: the
    # later result is what the trial went on from, so that one stands for the epoch.
    latest = {step_of(result): result for result in results}
    return [point for step, result in sorted(latest.items())
            for point in points(result, metrics) if point.step not in have.get(point.key, ())]


def backfill(client: MlflowClient, runs: dict[str, str], results: dict[str, list[dict]],
             metrics: tuple[str, ...] = METRICS) -> int:
    """Log, into each trial's run (`runs`: trial id -> run id), the points of its per-epoch
    `results` that MLflow lacks; return how many were written."""
    written = 0
    for trial_id, run_id in runs.items():
        rows = results.get(trial_id) or []
        keys = sorted({point.key for row in rows for point in points(row, metrics)})
        have = {key: {p.step for p in client.get_metric_history(run_id, key)} for key in keys}
        todo = missing(rows, have, metrics)
        for start in range(0, len(todo), BATCH):
            client.log_batch(run_id, metrics=todo[start:start + BATCH])
        written += len(todo)
    return written
