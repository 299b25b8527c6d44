"""MLflow as a mirror of the search: one parent run per experiment, one nested run per trial.

Ray's experiment storage is the source of truth; MLflow is a view of it. Every MLflow call runs
on one background thread fed by a queue (`Writer`), so a slow or dead tracking server can neither
fail nor stall training: a failing call is retried until its deadline, then dropped, counted and
logged, and `reconcile` back-fills what was dropped from Ray's results.

Because any call may be dropped, no action relies on an earlier one having succeeded: each
per-trial action finds its trial's run through `_run_id`, which creates the run when its creation
was dropped.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Optional

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from resnet_core.config import resolved
from search.engine.ledger import Ledger
from search.engine.trial_errors import error_reason
from search.experiment.outcome import Outcome
from search.spec.job import TrialJob
from search.spec.redact import redact
from search.tracking.backfill import backfill
from search.tracking.names import EPOCHS_TAG, hp_metrics, logged_params, number_of, run_name
from search.tracking.points import METRICS, best_point, points
from search.tracking.store import PARENT_TAG, children_query, text
from search.tracking.writer import Action, Writer

__all__ = ["METRICS", "MLFLOW_STATUS", "INTERRUPTED", "MlflowMirror"]

log = logging.getLogger("resnet_search.tracking")

MLFLOW_STATUS = {
    Outcome.COMPLETED: "FINISHED",
    Outcome.STOPPED: "FINISHED",
    Outcome.KILLED: "KILLED",
    Outcome.DIVERGED: "FAILED",
    Outcome.OOM: "FAILED",
    Outcome.INVALID: "FAILED",
    Outcome.FAILED: "FAILED",
}

INTERRUPTED = "interrupted"  # the reason of the runs a Ctrl+C or SIGTERM cut short

# The tags that say how a run ended: a reopened run drops them until it ends again.
VERDICT_TAGS = ("outcome", "reason", "stopped_by", "stopped_at_epoch")


class MlflowMirror(Callback):
    """Ray Tune callback that mirrors trials into MLflow without ever blocking Tune."""

    def __init__(self, uri: str, parent_run_id: str, job: TrialJob, ledger: Ledger,
                 deadline_s: float = 120.0, conditional: Iterable[str] = ()) -> None:
        self.uri = uri
        self.parent_run_id = parent_run_id
        self.job = job
        self.ledger = ledger  # how each trial ended (search.engine.ledger)
        # The space's conditional parameters (`when:`): a trial that did not sample one does
        # not show it among its params (names.logged_params).
        self.conditional = frozenset(conditional)
        self.runs: dict[str, str] = {}  # trial id -> child run id ("" until MLflow answers)
        self.configs: dict[str, dict] = {}  # trial id -> sampled params, to create its run
        # trial id -> its number in start order (the `t007` of its run's name), given when its
        # run is created; carried across drivers, as the runs are.
        self.numbers: dict[str, int] = {}
        self.unsaved: dict[str, list] = {}  # metrics of results whose checkpoint is not Ray's yet
        # Metrics whose checkpoint Ray has taken, but that no experiment snapshot holds yet: a
        # driver killed now resumes from the snapshot's checkpoint and trains them again.
        self.registered: dict[str, list] = {}
        self.closed: set[str] = set()  # trials whose run got its true outcome
        # trial id -> (tags, status) its run was last closed with: redone by reconcile when the
        # close was dropped, forgotten when the trial starts again.
        self.verdicts: dict[str, tuple[dict[str, str], str]] = {}
        self.resumed = False  # set by set_state: runs of an earlier driver may exist
        self.backfilled = 0  # metric points reconcile wrote
        # Touched by the writer's thread only:
        self._ended: set[str] = set()  # trials whose close reached MLflow
        self._unparamed: set[str] = set()  # runs created whose params are not logged yet
        # run id -> metric -> the steps MLflow holds. A run of an earlier driver is read once
        # per metric before the first point is logged into it: that driver may have logged an
        # epoch its last snapshot did not hold (killed between the two), and the resumed trial
        # trains that epoch again. Each epoch stays in MLflow once. Runs created here start
        # empty and are never read.
        self._steps: dict[str, dict[str, set[int]]] = {}
        self._created: set[str] = set()
        self._experiment_id: Optional[str] = None
        self._next_number: Optional[int] = None  # read from MLflow at this driver's first run
        self._hp_times: dict[str, int] = {}  # trial id -> the timestamp of its hp.* metrics
        self.writer = Writer(uri, deadline_s)

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the tuner (tuner.pkl, on shared storage): the URI goes
        # in masked, and a restored mirror gets it back from the launch (`relink`).
        return {**self.__dict__, "uri": redact(self.uri)}

    def relink(self, uri: str) -> None:
        """The tracking URI, secret included, for a mirror restored from its pickle."""
        self.uri = uri
        self.writer.relink(uri)

    def __setstate__(self, state: dict) -> None:
        # Tune pickles its callbacks with the tuner; a mirror pickled before these attributes
        # existed gets their empty values, and loses those the ledger has taken over (the
        # launch links it to its ledger: search.run.tuner.parts).
        for gone in ("scheduler_stops", "last", "end_reason"):  # resnet-search 0.2
            state.pop(gone, None)
        self.__dict__.update({"conditional": frozenset(), "numbers": {}, "_next_number": None,
                              "_hp_times": {}, "ledger": None, **state})

    @property
    def failures(self) -> int:
        """MLflow actions dropped after their deadline (reconcile repairs their metrics)."""
        return self.writer.failures

    @property
    def retries(self) -> int:
        return self.writer.retries

    def _submit(self, action: Action) -> None:
        self.writer.submit(action)

    def flush(self, timeout_s: float = 60.0) -> bool:
        return self.writer.flush(timeout_s)

    # --- saved with Tune's experiment state, so a resumed launch keeps one run per trial ---
    # Tune calls get_state at every experiment snapshot: it must never wait for MLflow. A trial
    # whose run was not created yet is simply left out, and gets its run when it resumes. The
    # copies are taken in one C call each: the writer's thread may add entries meanwhile.
    def get_state(self) -> dict:
        # Tune asks while it writes an experiment snapshot: every checkpoint registered so far
        # is in it, so the epochs they hold are never trained again and may reach MLflow now.
        # (What a crash keeps from MLflow is back-filled from Ray's results on resume.)
        for trial_id in list(self.registered):
            self._log(trial_id, self.registered.pop(trial_id))
        return {"runs": {t: r for t, r in dict(self.runs).items() if r},
                "configs": dict(self.configs), "closed": sorted(self.closed),
                "numbers": dict(self.numbers), "parent_run_id": self.parent_run_id}

    def set_state(self, state: dict) -> None:
        self.runs.update(state.get("runs", {}))
        self.configs.update(state.get("configs", {}))
        self.closed.update(state.get("closed", ()))
        self.numbers.update(state.get("numbers", {}))
        if self._next_number is not None:  # reconcile has numbered runs already
            self._next_number = max(self._next_number, 1 + max(self.numbers.values(), default=0))
        self.resumed = True

    # --- the writer's side: finding, creating, reopening and closing a trial's run ---
    def _experiment(self, client: MlflowClient) -> str:
        if self._experiment_id is None:
            self._experiment_id = client.get_run(self.parent_run_id).info.experiment_id
        return self._experiment_id

    def _children(self, client: MlflowClient, trial_id: Optional[str] = None) -> list:
        """The child runs of this experiment's parent run (of one trial, when given)."""
        query = children_query(self.parent_run_id, **({"trial_id": trial_id} if trial_id else {}))
        return list(client.search_runs([self._experiment(client)], query, max_results=10000,
                                       order_by=["attributes.start_time ASC"]))

    def _run_id(self, client: MlflowClient, trial_id: str, adopt: bool = False) -> str:
        """The trial's run, created now when its creation was dropped (or never queued)."""
        run_id = self.runs.get(trial_id)
        if not run_id:
            # After a driver crash a trial may already have a run that Tune's last snapshot
            # did not record (the snapshot never waits for MLflow): adopt it, keeping one run
            # per trial and the epochs it already logged. Its params were logged by whoever
            # created it (re-logging them could clash with values from older code).
            earlier = self._children(client, trial_id) if adopt or self.resumed else []
            run_id = earlier[0].info.run_id if earlier else self._create(client, trial_id)
            self.runs[trial_id] = run_id
        if trial_id in self._unparamed:  # the run exists; its params failed to log
            client.log_batch(run_id, params=self._params(trial_id),
                             metrics=self._hp_metrics(trial_id))
            self._unparamed.discard(trial_id)
        return run_id

    def _create(self, client: MlflowClient, trial_id: str) -> str:
        sampled = self.configs.get(trial_id, {})
        run = client.create_run(self._experiment(client),
                                run_name=run_name(self._number(client, trial_id), sampled),
                                tags={PARENT_TAG: self.parent_run_id, "trial_id": trial_id,
                                      "sampled": ",".join(sorted(sampled))})
        # Params go in a second call: if it fails, the retry must not create a second run.
        self._unparamed.add(trial_id)
        self._created.add(run.info.run_id)
        return run.info.run_id

    def _number(self, client: MlflowClient, trial_id: str) -> int:
        """The trial's number: the next one free when its run is first created. The first time
        in a driver, the runs already under the parent are read: an earlier driver that died
        between starting a trial and Tune's next snapshot numbered a run no state recorded."""
        if trial_id not in self.numbers:
            if self._next_number is None:
                taken = [number_of(run.info.run_name) for run in self._children(client)]
                self._next_number = 1 + max(
                    [0, *self.numbers.values(), *(n for n in taken if n is not None)])
            self.numbers[trial_id] = self._next_number
            self._next_number += 1
        return self.numbers[trial_id]

    def _params(self, trial_id: str) -> list[Param]:
        """The trial's resolved config as params (what a rerun of it needs), without the
        conditional parameters it did not sample."""
        sampled = self.configs.get(trial_id)
        if sampled is None:
            log.warning("MLflow run of trial %s created without params: its sampled config is "
                        "unknown to this driver", trial_id)
            return []
        try:
            values = resolved(self.job.train_config(sampled))
        except ValueError:  # a config the trial itself rejects: its sampled values still say
            values = sampled  # what was tried, and the run's outcome says why it failed
        return [Param(k, text(v)) for k, v in
                sorted(logged_params(values, sampled, self.conditional).items())]

    def _hp_metrics(self, trial_id: str) -> list[Metric]:
        """Its sampled numbers as `hp.*` metrics. The timestamp is taken once, so a retry of a
        write that did commit logs the same points, which MLflow keeps once."""
        when = self._hp_times.setdefault(trial_id, int(time.time() * 1000))
        return hp_metrics(self.configs.get(trial_id) or {}, when)

    def _reopen(self, client: MlflowClient, trial_id: str, adopt: bool = False) -> None:
        """A trial that starts again: its run is RUNNING and without a verdict until it ends."""
        run_id = self._run_id(client, trial_id, adopt)
        run = client.get_run(run_id)
        if run.info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        for key in VERDICT_TAGS:
            if key in run.data.tags:
                client.delete_tag(run_id, key)
        self._ended.discard(trial_id)

    def _finish(self, client: MlflowClient, trial_id: str, tags: dict[str, str],
                status: str) -> None:
        run_id = self._run_id(client, trial_id)
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        client.set_terminated(run_id, status)
        self._ended.add(trial_id)

    # --- Tune events (Tune's thread: they only queue work) ---
    def _know(self, trial: Any) -> str:
        """Record what creating the trial's run needs; every trial heard of gets a run."""
        self.configs.setdefault(trial.trial_id, dict(trial.config or {}))
        self.runs.setdefault(trial.trial_id, "")
        return trial.trial_id

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        started_before = trial.trial_id in self.verdicts
        trial_id = self._know(trial)
        # It ends (again) later, and must be closed then: as interrupted by the last launch it
        # was not closed for real (and Tune's snapshot may or may not list it as closed).
        self.closed.discard(trial_id)
        self.verdicts.pop(trial_id, None)
        if self.resumed or started_before:
            # Its run may have been closed: as interrupted by the last launch, or as errored
            # before Tune resumed it. A restored or restarted trial keeps its run.
            self._submit(lambda client: self._reopen(client, trial_id))
        else:
            self._submit(lambda client: self._run_id(client, trial_id))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Retried in this driver from its last registered checkpoint: what that holds stays
        # `registered` (logged with the next snapshot), what came after it is trained again.
        self.unsaved.pop(trial.trial_id, None)
        self._tag(self._know(trial), {"restarts": str(trial.num_failures)})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if self.ledger.interrupted:
            # Ray has taken its last snapshot of an interrupted search and still hands over
            # results while it stops the trials: a resume trains those epochs again, from the
            # snapshot, and they reach MLflow then (once).
            return
        trial_id = self._know(trial)
        values = points(result)
        if not values:
            return
        if result.get("should_checkpoint"):
            # Ray takes a result, then its checkpoint in a second step. Until the checkpoint is
            # Ray's, a stop (Ctrl+C between the two) resumes the trial from the checkpoint
            # before and trains this epoch again: it is logged when its checkpoint is saved.
            self.unsaved.setdefault(trial_id, []).extend(values)
        else:
            self._log(trial_id, values)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        values = self.unsaved.pop(trial.trial_id, None)
        if values:  # logged with the next experiment snapshot (get_state)
            self.registered.setdefault(trial.trial_id, []).extend(values)

    def _log(self, trial_id: str, values: list) -> None:
        self._submit(lambda client: self._write(client, trial_id, values))

    def _write(self, client: MlflowClient, trial_id: str, values: list) -> None:
        """Log the points of `values` whose (metric, step) the trial's run does not hold."""
        run_id = self._run_id(client, trial_id)
        steps = self._steps.setdefault(run_id, {})
        fresh = []
        for point in values:
            if point.key not in steps:
                steps[point.key] = set() if run_id in self._created else {
                    p.step for p in client.get_metric_history(run_id, point.key)}
            if point.step not in steps[point.key]:
                fresh.append(point)
        if fresh:
            client.log_batch(run_id, metrics=fresh)
            for point in fresh:
                steps[point.key].add(point.step)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, errored=True)

    def _close(self, trial: Any, errored: bool) -> None:
        trial_id = self._know(trial)
        self.closed.add(trial_id)
        # It ended: nothing of it will be trained again.
        ended = self.registered.pop(trial_id, []) + self.unsaved.pop(trial_id, [])
        if ended:
            self._log(trial_id, ended)
        end = self.ledger.end(trial_id, errored=errored,
                              last=self.ledger.last.get(trial_id) or trial.last_result,
                              reason=lambda: error_reason(trial))
        tags = {"outcome": end.outcome.value, EPOCHS_TAG: str(end.epochs)}
        if end.stopped_by:
            tags["stopped_by"] = end.stopped_by
            tags["stopped_at_epoch"] = str(end.epochs)
        if end.reason:
            tags["reason"] = text(end.reason)
        self._end(trial_id, tags, MLFLOW_STATUS[end.outcome])

    def _interrupt(self, trial: Any) -> None:
        """Close the run of a trial the launch's interruption stops. Not marked closed: when a
        resumed launch continues the trial, its run is reopened and ends with its true
        outcome."""
        trial_id = self._know(trial)
        last = self.ledger.last.get(trial_id) or trial.last_result or {}
        self._end(trial_id, {"outcome": Outcome.KILLED.value, "reason": INTERRUPTED,
                             EPOCHS_TAG: str(int(last.get("epoch", 0)))},
                  MLFLOW_STATUS[Outcome.KILLED])

    def _end(self, trial_id: str, tags: dict[str, str], status: str) -> None:
        self.verdicts[trial_id] = (tags, status)
        self._submit(lambda client: self._finish(client, trial_id, tags, status))

    def _tag(self, trial_id: str, tags: dict[str, str]) -> None:
        def write(client: MlflowClient) -> None:
            client.log_batch(self._run_id(client, trial_id),
                             tags=[RunTag(k, v) for k, v in tags.items()])

        self._submit(write)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # A search stopped as a whole (time limit, fail-fast, Ctrl+C) stops its running trials
        # without Tune calling on_trial_complete for them: close their runs here, or they stay
        # RUNNING.
        interrupted = self.ledger.interrupted
        for trial in trials:
            if trial.trial_id not in self.runs or trial.trial_id in self.closed:
                continue
            # Tune has already marked the trials it stopped TERMINATED by now; on Ctrl+C every
            # trial not closed through on_trial_complete/error was cut short and will resume.
            if interrupted:
                self._interrupt(trial)
            else:
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

    # --- repair from Ray's results (the launch: at the end of a search, after a resume) ---
    def reconcile(self, results: dict[str, list[dict]],
                  configs: Optional[dict[str, dict]] = None) -> None:
        """Queue the repair of what the writer dropped: each trial of `results` (trial id ->
        its per-epoch results from Ray) gets its run and every epoch MLflow lacks, and closes
        that were dropped are redone. Each also gets its best objective so far
        (`best_<metric>`, from the same results: the launch reconciles at its end). `configs`
        gives the sampled params of trials this mirror never saw start, for their runs'
        params. Runs after everything queued so far; returns at once (`flush` waits for it)."""
        for trial_id, sampled in (configs or {}).items():
            self.configs.setdefault(trial_id, dict(sampled))
        for trial_id, rows in results.items():
            # Ray puts a trial's config in each of its results: the fallback for its params.
            config = next((row["config"] for row in reversed(rows)
                           if isinstance(row.get("config"), dict)), None)
            if config is not None:
                self.configs.setdefault(trial_id, dict(config))
            self.runs.setdefault(trial_id, "")
            # One action per trial: a trial MLflow cannot take does not hold up the others.
            self._submit(lambda client, trial_id=trial_id, rows=list(rows):
                         self._backfill(client, trial_id, rows))
        self._submit(self._redo_ends)

    def _backfill(self, client: MlflowClient, trial_id: str, rows: list[dict]) -> None:
        # Adopt: reconcile may run before Tune has handed this mirror its saved runs.
        run_id = self._run_id(client, trial_id, adopt=True)
        self.backfilled += backfill(client, {trial_id: run_id}, {trial_id: rows})
        best = best_point(rows, self.job.metric, self.job.mode)
        if best is not None:
            client.log_batch(run_id, metrics=[best])
        self._steps.pop(run_id, None)  # it holds more now: read again when next logged into
        self._created.discard(run_id)

    def _redo_ends(self, client: MlflowClient) -> None:
        for trial_id, (tags, status) in dict(self.verdicts).items():
            if trial_id not in self._ended:
                self._finish(client, trial_id, tags, status)
