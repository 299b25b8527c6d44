"""MLflow as a mirror of the search: one parent run per experiment, one nested run per trial.

Ray's experiment storage is the source of truth; MLflow is a view of it. Every MLflow call runs
on one background thread fed by a queue, so a slow or dead tracking server can neither fail nor
stall training — failures are logged loudly and counted, and the search goes on.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from resnet_core.config import resolved
from search.experiment.outcome import Outcome, outcome_of
from search.spec.job import TrialJob
from search.engine.trial_errors import error_reason
from search.tracking.store import PARENT_TAG, text
from search.tracking.writer import Action, Writer

# Per-epoch values worth a chart; everything else a trial reports is Ray bookkeeping.
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
           "epoch_seconds", "images_per_s", "peak_mem_mb")

MLFLOW_STATUS = {
    Outcome.COMPLETED: "FINISHED",
    Outcome.STOPPED: "FINISHED",
    Outcome.KILLED: "KILLED",
    Outcome.DIVERGED: "FAILED",
    Outcome.OOM: "FAILED",
    Outcome.INVALID: "FAILED",
    Outcome.FAILED: "FAILED",
}


def _finite(result: dict) -> list[tuple[str, float]]:
    return [(k, float(result[k])) for k in METRICS
            if isinstance(result.get(k), (int, float)) and math.isfinite(result[k])]


class MlflowMirror(Callback):
    """Ray Tune callback that mirrors trials into MLflow without ever blocking Tune."""

    def __init__(self, uri: str, parent_run_id: str, job: TrialJob,
                 scheduler_stops: Callable[[str], bool]) -> None:
        self.uri = uri
        self.parent_run_id = parent_run_id
        self.job = job
        self.scheduler_stops = scheduler_stops
        self.runs: dict[str, str] = {}  # trial id -> child run id; pickled with the experiment
        self.last: dict[str, dict] = {}
        self.closed: set[str] = set()  # trials whose run got its outcome
        self.resumed = False  # set by set_state: runs of an earlier driver may exist
        self.writer = Writer(uri)

    @property
    def failures(self) -> int:
        return self.writer.failures

    def _submit(self, action: Action) -> None:
        self.writer.submit(action)

    def flush(self, timeout_s: float = 60.0) -> bool:
        return self.writer.flush(timeout_s)

    # --- saved with Tune's experiment state, so a resumed launch keeps one run per trial ---
    # Tune calls get_state at every experiment snapshot: it must never wait for MLflow. A trial
    # whose run was not created yet is simply left out, and gets its run when it resumes.
    def get_state(self) -> dict:
        return {"runs": {t: r for t, r in self.runs.items() if r},
                "closed": sorted(self.closed), "parent_run_id": self.parent_run_id}

    def set_state(self, state: dict) -> None:
        self.runs.update(state.get("runs", {}))
        self.closed.update(state.get("closed", ()))
        self.resumed = True

    def _children(self, client: MlflowClient, trial_id: Optional[str] = None) -> list:
        """The child runs of this experiment's parent run (of one trial, when given)."""
        parent = client.get_run(self.parent_run_id)
        query = f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'"
        if trial_id:
            query += f" and tags.trial_id = '{trial_id}'"
        return list(client.search_runs([parent.info.experiment_id], query, max_results=10000,
                                       order_by=["attributes.start_time ASC"]))

    # --- Tune events ---
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.runs:
            return  # a restored or restarted trial keeps its run
        params = resolved(self.job.train_config(trial.config))
        self.runs[trial.trial_id] = ""  # filled in by the worker once MLflow answers

        def create(client: MlflowClient) -> None:
            # After a driver crash a trial may already have a run that Tune's last snapshot
            # did not record (the snapshot never waits for MLflow): adopt it, keeping one run
            # per trial and the epochs it already logged.
            earlier = self._children(client, trial.trial_id) if self.resumed else []
            if earlier:  # its params were logged when it was created
                self.runs[trial.trial_id] = earlier[0].info.run_id
                return
            parent = client.get_run(self.parent_run_id)
            run = client.create_run(parent.info.experiment_id, run_name=str(trial), tags={
                PARENT_TAG: self.parent_run_id, "trial_id": trial.trial_id,
                "sampled": ",".join(sorted(trial.config))})
            self.runs[trial.trial_id] = run.info.run_id
            client.log_batch(run.info.run_id,
                             params=[Param(k, text(v)) for k, v in sorted(params.items())])

        self._submit(create)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._tag(trial.trial_id, {"restarts": str(trial.num_failures)})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.last[trial.trial_id] = result
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        values = _finite(result)
        trial_id = trial.trial_id

        def write(client: MlflowClient) -> None:
            ts = int(result.get("timestamp", 0) * 1000)
            client.log_batch(self.runs[trial_id],
                             metrics=[Metric(k, v, ts, step) for k, v in values])

        if values:
            self._submit(write)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, errored=True)

    def _close(self, trial: Any, errored: bool) -> None:
        self.closed.add(trial.trial_id)
        last = self.last.get(trial.trial_id) or trial.last_result or {}
        epochs = int(last.get("epoch", 0))
        verdict = outcome_of(last, max_epochs=self.job.max_epochs, errored=errored,
                             stopped_by_scheduler=self.scheduler_stops(trial.trial_id))
        tags = {"outcome": verdict.value, "epochs": str(epochs)}
        if verdict is Outcome.STOPPED:
            tags["stopped_by"] = "asha"
            tags["stopped_at_epoch"] = str(epochs)
        if last.get("reason"):
            tags["reason"] = text(last["reason"])
        if errored:
            tags["reason"] = text(error_reason(trial))
        self._tag(trial.trial_id, tags)
        trial_id = trial.trial_id
        self._submit(lambda client: client.set_terminated(self.runs[trial_id],
                                                          MLFLOW_STATUS[verdict]))

    def _tag(self, trial_id: str, tags: dict[str, str]) -> None:
        def write(client: MlflowClient) -> None:
            client.log_batch(self.runs[trial_id], tags=[RunTag(k, v) for k, v in tags.items()])

        self._submit(write)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # A search stopped as a whole (time limit, fail-fast) stops its running trials without
        # Tune calling on_trial_complete for them: close their runs here, or they stay RUNNING.
        for trial in trials:
            if trial.trial_id in self.runs and trial.trial_id not in self.closed:
                self._close(trial, errored=trial.status == "ERROR")
        if self.resumed:
            kept = {trial.trial_id for trial in trials}
            self._submit(lambda client: self._close_orphans(client, kept))
        self.flush()

    def _close_orphans(self, client: MlflowClient, kept: set[str]) -> None:
        """A driver killed between starting a trial and Tune's next snapshot leaves an MLflow
        run for a trial the restored experiment never had (the searcher suggested anew). Such
        a run would stay RUNNING forever; close it as killed, saying why, rather than delete
        what it logged."""
        for run in self._children(client):
            trial_id = run.data.tags.get("trial_id", "")
            # Read on the worker: queued creates before this one have filled in self.runs.
            if run.info.status != "RUNNING" or (
                    trial_id in kept and self.runs.get(trial_id) == run.info.run_id):
                continue
            client.log_batch(run.info.run_id, tags=[
                RunTag("outcome", Outcome.KILLED.value),
                RunTag("reason", f"the driver died before Ray saved trial {trial_id}; the "
                                 "resumed search did not continue it")])
            client.set_terminated(run.info.run_id, MLFLOW_STATUS[Outcome.KILLED])


