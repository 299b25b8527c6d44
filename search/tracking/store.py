"""The MLflow tracking store: probed before a launch, the experiment's parent run opened and,
at the end, summarised. Synchronous calls, each under a deadline (`within`)."""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Optional

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"


def within(timeout_s: float, call: Callable[[], Any]) -> Optional[str]:
    """Run `call` with a deadline; return why it failed or timed out, or None. MLflow's HTTP
    client retries with back-off for minutes, which must never hold up a launch or its end."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            call()
        except Exception as error:  # noqa: BLE001 - any failure is reported, none raised
            result["error"] = f"{type(error).__name__}: {error}"

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return f"no answer within {timeout_s:.0f} s"
    return result.get("error")


def probe(uri: str, timeout_s: float = 10.0) -> Optional[str]:
    """Why the tracking store cannot be used, or None. Runs before any training starts."""
    return within(timeout_s, lambda: MlflowClient(uri).search_experiments(max_results=1))


def open_parent(uri: str, experiment: str, run_name: str, tags: dict[str, str],
                params: dict[str, Any], artifacts: dict[str, str]) -> str:
    """Create the experiment's parent run and return its id (synchronously: done at launch)."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    client.log_batch(run.info.run_id, params=[Param(k, text(v)) for k, v in params.items()])
    for name, body in artifacts.items():
        client.log_text(run.info.run_id, body, name)
    return run.info.run_id


def text(value: Any) -> str:
    """A value as an MLflow param or tag (cut to what MLflow accepts)."""
    return str(value)[:6000]


def summarise_parent(uri: str, parent_run_id: str, best: Optional[dict], status: str,
                     aborted: Optional[str] = None) -> None:
    """Best trial on the parent run, then close it (synchronously, after the search)."""
    client = MlflowClient(uri)
    if aborted:
        client.set_tag(parent_run_id, "aborted", text(aborted))
    if best:
        client.log_batch(parent_run_id, metrics=[
            Metric(f"best_{k}", float(v), 0, 0) for k, v in best["metrics"].items()
            if isinstance(v, (int, float)) and math.isfinite(v)],
            tags=[RunTag("best_trial_id", best["trial_id"]),
                  RunTag("best_run_id", best.get("run_id") or "")],
            params=[Param(f"best.{k}", text(v)) for k, v in sorted(best["config"].items())])
    client.set_terminated(parent_run_id, status)

