"""The report on the experiment's MLflow parent run: the folder logged as its artifacts under
`report/`, next to spec.json and best_config.json, so that whoever opens the run sees the plots.
A mirror like every MLflow write of this product: under a deadline, a failure is returned (the
command warns), never raised, and the files stay in the folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

ARTIFACT_PATH = "report"
DEADLINE_S = 120.0  # a report of a large search is tens of MB of self-contained HTML


def log_to_parent(tracking_uri: str, parent_run_id: str, folder: Path,
                  deadline_s: float = DEADLINE_S) -> Optional[str]:
    """Log every file of `folder` to the parent run under `report/`; why it failed, or None."""
    from mlflow.tracking import MlflowClient

    from search.tracking.store import bounded

    if not parent_run_id:
        return "the experiment record names no MLflow parent run"
    return bounded(tracking_uri, deadline_s, lambda: MlflowClient(tracking_uri).log_artifacts(
        parent_run_id, str(folder), ARTIFACT_PATH))
