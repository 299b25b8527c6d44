"""MLflow as a mirror of the search: one parent run per experiment, one nested run per trial.

Ray's experiment storage is the source of truth; MLflow is a view of it. The mirror is the Tune
callback: it turns Tune's events into actions on the book of trial runs
(`search.tracking.runbook`), which hold every MLflow call, and queues them on one background
thread (`search.tracking.writer`), so a slow or dead tracking server can neither fail nor stall
training: a failing call is retried until its deadline, then dropped, counted and logged, and
`reconcile` back-fills what was dropped from Ray's results.

What the mirror keeps itself lives on Tune's thread: what Tune's experiment snapshots save
(`get_state`/`set_state`), which epochs may reach MLflow yet (their checkpoint must be Ray's
first), and how each trial's run was last closed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional

from ray.tune import Callback

from search.engine.trial_errors import error_reason
from search.spec.outcome import Outcome
from search.spec.redact import redact
from search.tracking.names import EPOCHS_TAG
from search.tracking.points import METRICS, points
from search.tracking.runbook import MLFLOW_STATUS, STATE, RunBook
from search.tracking.store import move_front, text
from search.tracking.writer import Writer

if TYPE_CHECKING:
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial

    from search.engine.ledger import Ledger
    from search.spec.job import TrialJob

__all__ = ["METRICS", "MLFLOW_STATUS", "INTERRUPTED", "MlflowMirror"]

INTERRUPTED = "interrupted"  # the reason of the runs a Ctrl+C or SIGTERM cut short

# What a mirror pickled by resnet-search 0.2 held that the ledger has taken over.
_GONE = ("scheduler_stops", "last", "end_reason")


class MlflowMirror(Callback):
    """Ray Tune callback that mirrors trials into MLflow without ever blocking Tune."""

    def __init__(self, uri: str, parent_run_id: str, job: TrialJob, ledger: Ledger,
                 deadline_s: float = 120.0, conditional: Iterable[str] = ()) -> None:
        self._built(uri, ledger, RunBook(parent_run_id, job, conditional),
                    Writer(uri, deadline_s))

    def _built(self, uri: str, ledger: Optional[Ledger], book: RunBook, writer: Writer) -> None:
        self.uri = uri
        self.ledger = ledger  # how each trial ended (search.engine.ledger)
        self.book = book  # the trial runs, on the writer's thread
        self.writer = writer
        # Tune's thread only, from here on.
        self.known: set[str] = set()  # trials heard of: every one gets a run
        self.configs: dict[str, dict] = {}  # trial id -> sampled params (the book gets a copy)
        # The runs and numbers of the snapshot Tune restored: the book gets them through the
        # writer's queue, and a snapshot taken before the writer reaches them still holds them.
        self.restored: dict[str, dict] = {"runs": {}, "numbers": {}}
        self.unsaved: dict[str, list] = {}  # metrics of results whose checkpoint is not Ray's yet
        # Metrics whose checkpoint Ray has taken, but that no experiment snapshot holds yet: a
        # driver killed now resumes from the snapshot's checkpoint and trains them again.
        self.registered: dict[str, list] = {}
        self.closed: set[str] = set()  # trials whose run got its true outcome
        # trial id -> (tags, status) its run was last closed with: redone by reconcile when the
        # close was dropped, forgotten when the trial starts again.
        self.verdicts: dict[str, tuple[dict[str, str], str]] = {}
        self.resumed = False  # set by set_state: runs of an earlier driver may exist

    # --- pickled with the tuner ---
    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into tuner.pkl (on shared storage) when it makes the tuner:
        # a mirror pickles as it was built, its URI masked (a restored mirror gets it back from
        # the launch: `relink`). What it learns later goes into Tune's snapshots (get_state).
        return {"uri": redact(self.uri), "ledger": self.ledger, "book": self.book,
                "writer": self.writer}

    def __setstate__(self, state: dict) -> None:
        if "book" in state:
            self._built(state["uri"], state.get("ledger"), state["book"], state["writer"])
        else:
            self._unsplit(state)

    def _unsplit(self, state: dict) -> None:
        """A mirror pickled as one object (resnet-search 0.2 up to commit c877e2e): what the
        writer's side held goes to its book. The ledger's part is dropped (the launch links the
        mirror to its ledger: search.run.tuner.parts)."""
        state = {k: v for k, v in state.items() if k not in _GONE}
        book = RunBook(state["parent_run_id"], state["job"], state.get("conditional", ()))
        self._built(state["uri"], state.get("ledger"), book, state["writer"])
        runs = state.get("runs", {})
        self.known.update(runs)
        self.configs.update(state.get("configs", {}))
        for name in ("unsaved", "registered", "closed", "verdicts", "resumed"):
            if name in state:
                setattr(self, name, state[name])
        book.__dict__.update({name: state[name] for name in STATE if name in state})
        book.runs = {trial_id: run_id for trial_id, run_id in runs.items() if run_id}
        book.configs = dict(self.configs)

    def relink(self, uri: str) -> None:
        """The tracking URI, secret included, for a mirror restored from its pickle."""
        self.uri = uri
        self.writer.relink(uri)

    # --- what the launch reads ---
    @property
    def runs(self) -> dict[str, str]:
        """trial id -> its run id (a copy): the book's, and those of the snapshot Tune
        restored."""
        return {**self.restored["runs"], **self.book.snapshot()["runs"]}

    @property
    def failures(self) -> int:
        """MLflow actions dropped after their deadline (reconcile repairs their metrics)."""
        return self.writer.failures

    @property
    def retries(self) -> int:
        return self.writer.retries

    @property
    def backfilled(self) -> int:
        """Metric points reconcile wrote (read after `flush`)."""
        return self.book.snapshot()["backfilled"]

    def flush(self, timeout_s: float = 60.0) -> bool:
        return self.writer.flush(timeout_s)

    # --- saved with Tune's experiment state, so a resumed launch keeps one run per trial ---
    # Tune calls get_state at every experiment snapshot: it must never wait for MLflow. A trial
    # whose run was not created yet is simply left out, and gets its run when it resumes.
    def get_state(self) -> dict:
        # Tune asks while it writes an experiment snapshot: every checkpoint registered so far
        # is in it, so the epochs they hold are never trained again and may reach MLflow now.
        # (What a crash keeps from MLflow is back-filled from Ray's results on resume.)
        for trial_id in list(self.registered):
            self._log(trial_id, self.registered.pop(trial_id))
        book = self.book.snapshot()
        return {"runs": {**self.restored["runs"], **book["runs"]},
                "configs": dict(self.configs), "closed": sorted(self.closed),
                "numbers": {**self.restored["numbers"], **book["numbers"]},
                "parent_run_id": self.book.parent_run_id}

    def set_state(self, state: dict) -> None:
        runs, numbers = dict(state.get("runs", {})), dict(state.get("numbers", {}))
        configs = dict(state.get("configs", {}))
        self.restored["runs"].update(runs)
        self.restored["numbers"].update(numbers)
        self.known.update(runs)
        self.configs.update(configs)
        self.closed.update(state.get("closed", ()))
        self.resumed = True
        self.writer.note(lambda: self.book.restore(runs, configs, numbers))

    # --- Tune's events: they only queue work ---
    def _learn(self, trial_id: str, config: dict) -> None:
        """The sampled params of a trial, for its run (the first heard of stays)."""
        if trial_id not in self.configs:
            self.configs[trial_id] = config
            self.writer.note(lambda: self.book.know(trial_id, config))

    def _know(self, trial: Trial) -> str:
        """Record what creating the trial's run needs; every trial heard of gets a run."""
        self._learn(trial.trial_id, dict(trial.config or {}))
        self.known.add(trial.trial_id)
        return trial.trial_id

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        started_before = trial.trial_id in self.verdicts
        trial_id = self._know(trial)
        # It ends (again) later, and must be closed then: as interrupted by the last launch it
        # was not closed for real (and Tune's snapshot may or may not list it as closed).
        self.closed.discard(trial_id)
        self.verdicts.pop(trial_id, None)
        if self.resumed or started_before:
            # Its run may have been closed: as interrupted by the last launch, or as errored
            # before Tune resumed it. A restored or restarted trial keeps its run.
            self.writer.submit(lambda client: self.book.reopen(client, trial_id))
        else:
            self.writer.submit(lambda client: self.book.run_id(client, trial_id))

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial,
                         **info: Any) -> None:
        # Retried in this driver from its last registered checkpoint: what that holds stays
        # `registered` (logged with the next snapshot), what came after it is trained again.
        self.unsaved.pop(trial.trial_id, None)
        trial_id, tags = self._know(trial), {"restarts": str(trial.num_failures)}
        self.writer.submit(lambda client: self.book.tag(client, trial_id, tags))

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict,
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

    def on_checkpoint(self, iteration: int, trials: list[Trial], trial: Trial,
                      checkpoint: Checkpoint, **info: Any) -> None:
        values = self.unsaved.pop(trial.trial_id, None)
        if values:  # logged with the next experiment snapshot (get_state)
            self.registered.setdefault(trial.trial_id, []).extend(values)

    def _log(self, trial_id: str, values: list) -> None:
        self.writer.submit(lambda client: self.book.write(client, trial_id, values))

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial,
                          **info: Any) -> None:
        self._close(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        self._close(trial, errored=True)

    def _close(self, trial: Trial, errored: bool) -> None:
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
        if end.outcome is Outcome.COMPLETED and self.book.job.objectives:
            self._move_front()

    def _move_front(self) -> None:
        """Several objectives: `pareto=true` moves to the front of the trials that ran their
        whole budget so far, as each one ends (the ledger has every ended trial, those of
        earlier launches too); the end of the launch sets it again from the record."""
        job = self.book.job
        front = self.ledger.front(job.all_objectives, job.constraints)
        parent = self.book.parent_run_id
        self.writer.submit(lambda client: move_front(client, parent, front))

    def _interrupt(self, trial: Trial) -> None:
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
        self.writer.submit(lambda client: self.book.finish(client, trial_id, tags, status))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        # A search stopped as a whole (time limit, fail-fast, Ctrl+C) stops its running trials
        # without Tune calling on_trial_complete for them: close their runs here, or they stay
        # RUNNING.
        interrupted = self.ledger.interrupted
        for trial in trials:
            if trial.trial_id not in self.known or trial.trial_id in self.closed:
                continue
            # Tune has already marked the trials it stopped TERMINATED by now; on Ctrl+C every
            # trial not closed through on_trial_complete/error was cut short and will resume.
            if interrupted:
                self._interrupt(trial)
            else:
                self._close(trial, errored=trial.status == "ERROR")
        if self.resumed:
            kept = {trial.trial_id for trial in trials}
            self.writer.submit(lambda client: self.book.close_orphans(client, kept))
        self.flush()

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
            self._learn(trial_id, dict(sampled))
        for trial_id, rows in results.items():
            # Ray puts a trial's config in each of its results: the fallback for its params.
            config = next((row["config"] for row in reversed(rows)
                           if isinstance(row.get("config"), dict)), None)
            if config is not None:
                self._learn(trial_id, dict(config))
            self.known.add(trial_id)
            # One action per trial: a trial MLflow cannot take does not hold up the others.
            self.writer.submit(lambda client, trial_id=trial_id, rows=list(rows):
                               self.book.backfill(client, trial_id, rows))
        verdicts = dict(self.verdicts)  # as now: a trial that ends later queues its own close
        self.writer.submit(lambda client: self.book.redo_ends(client, verdicts))
