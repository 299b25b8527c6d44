"""The search on Ray: the driver side of a new or resumed experiment, from the tracking probe to
an honest ending (finished, aborted by fail-fast, or interrupted by a signal)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from search.engine import pareto, study
from search.experiment import extend
from search.experiment.decide import Action, Decision, ray_directory
from search.experiment.lease import LeaseLost
from search.experiment.record import Experiment
from search.experiment.state import DamagedRecord, State, Status
from search.remote import cluster
from search.run import provenance, reaper, trialfiles
from search.run.checks import check_nodes, check_resources, cluster_totals
from search.run.driverlog import teed_stderr
from search.run.interrupt import Interruption, StopWatch
from search.run.ending import Ending
from search.run.errors import StorageFull
from search.run.fullstorage import no_space, storage_full
from search.run.runtime import init_ray, quiet_engines
from search.run.tuner import new_tuner, parts, restored_tuner, with_budget
from search.spec.job import TrialJob
from search.spec.model import SearchSpec
from search.spec.redact import redact
from search.tracking import store
from search.wait.rules import EVERY_S, waiting_line
from search.wait.waiter import machine_load

if TYPE_CHECKING:
    from search.experiment.results import Results
    from search.tracking.mirror import MlflowMirror

log = logging.getLogger("resnet_search.launch")

# MLflow calls made at the start and the end of a search never wait longer than this for a
# tracking server (a local SQLite store is local work: no deadline, search/tracking/store.py).
TRACKING_DEADLINE_S = 60.0


def drive(spec: SearchSpec, record: Experiment, job: TrialJob, decision: Decision, *,
          address: Optional[str], console: Any, callbacks: tuple, reuse_actors: bool,
          warm: Any = None) -> Ending:
    """Run the search on Ray (the pre-flight has passed). Whatever fails after the parent run
    was opened closes it, saying why; a new experiment that computed nothing leaves no record
    that would look resumable. `warm`: what a new experiment's warm start tells its searcher
    (search/engine/warm.py)."""
    quiet_engines()
    uri = record.location.tracking_uri
    if address is None:
        # Nothing of this driver's local Ray may outlive it, even if it is SIGKILLed.
        reaper.start_guardian(reaper.mark_session())
    init_ray(address)
    check_resources(spec)
    if address is not None:  # storage_path and data.root, read on every node (checks.py)
        check_nodes(record.location.storage, job.data, spec.trial.resources, console)

    resumed = decision.action in (Action.RESUME, Action.EXTEND)
    parent = decision.parent_run_id or _open_parent(spec, uri)
    try:
        with teed_stderr(record.directory, keep=record.holds):
            if decision.action is Action.EXTEND:
                _extend(spec, record, uri, parent, decision.changes)
            return _search(spec, record, job, parent, resumed, bool(decision.parent_run_id),
                           console, callbacks, reuse_actors, warm)
    except LeaseLost:
        raise  # the record, Ray's state and the MLflow runs are the new holder's now
    except BaseException as error:
        _failed(record, uri, parent, error)
        if no_space(error):  # the driver's own write to a full storage_path
            raise StorageFull(storage_full(record.location.storage)) from None
        raise
    finally:
        record.clear_stop()  # obeyed (or moot): it must not stop the next launch


def _failed(record: Experiment, uri: str, parent: str, error: BaseException) -> None:
    """Close what the launch opened when it fails (a signal before Tune took over included)."""
    first = (str(error).splitlines() or [""])[0]
    why = "interrupted" if isinstance(error, KeyboardInterrupt) else (
        f"{type(error).__name__}: {first}")
    if record.ray_saved():  # something was computed: it stays resumable
        with contextlib.suppress(DamagedRecord):
            _mark(record, Status.INTERRUPTED, why)
        state, status = Status.INTERRUPTED.value, "KILLED"
    else:  # nothing was computed: nothing may look resumable
        record.forget()
        state, status = "failed", "FAILED"
    _tracked(uri, "close the parent run", lambda: store.summarise_parent(
        uri, parent, metric="", best=None, state=state, reason=why, status=status))


def _extend(spec: SearchSpec, record: Experiment, uri: str, parent: str,
            changes: tuple[str, ...]) -> None:
    """The larger budget becomes the record's (its spec, hash and the change noted), and the
    parent run's: one parent for the whole search, its spec.json and description the larger
    budget's (MLflow params never change: its `trials` and `max_epochs` stay the first)."""
    record.extend(spec.resolved(), spec.spec_hash(), changes)
    _tracked(uri, "note the extension on the parent run", lambda: store.extend_parent(
        uri, parent, redact(json.dumps(spec.resolved(), indent=2, default=str)),
        budget={"trials": spec.budget.trials, "max_epochs": spec.budget.max_epochs},
        changes=[c for entry in record.state().extended for c in entry["changes"]]))


def _search(spec: SearchSpec, record: Experiment, job: TrialJob, parent: str, resumed: bool,
            reopened: bool, console: Any, callbacks: tuple, reuse_actors: bool,
            warm: Any = None) -> Ending:
    uri = record.location.tracking_uri
    if resumed:
        # Restored first: a snapshot it refuses (search/experiment/snapshot.py) changes nothing.
        tuner = restored_tuner(spec, job, record.directory, console)
        _tracked(uri, "reopen the parent run", lambda: store.reopen_parent(uri, parent))
    else:
        if reopened:  # the last driver died before computing anything
            _tracked(uri, "reopen the parent run", lambda: store.reopen_parent(uri, parent))
        record.save_spec(spec.resolved())
        now = time.time()
        known = warm.record() if warm is not None else None
        record.save_state(State(name=spec.name, spec_hash=spec.spec_hash(),
                                parent_run_id=parent, tracking_uri=redact(uri),
                                status=Status.RUNNING, created_at=now, updated_at=now,
                                warm_start=known))
        if known is not None:
            _tracked(uri, "tag the parent run with the warm start", lambda: store.tag_parent(
                uri, parent, store.warm_start_tags(known)))
        tuner = new_tuner(spec, job, record.directory, uri, parent, console, callbacks,
                          reuse_actors, warm)
    ours = parts(tuner, spec)
    if resumed:
        ours = with_budget(tuner, ours, spec, job)  # the spec's: an extension raised it
        ours.progress.console = console or ours.progress.console  # not pickled with the tuner
        ours.mirror.relink(uri)  # pickled with its URI's secret masked
        # Runs of an earlier driver exist, found by their trial ids, also when Tune has no
        # callbacks' state to give the mirror at fit (a cut-short file set aside,
        # search/experiment/snapshot.py); a state it has adds to this.
        ours.mirror.set_state({})
        earlier = record.results(job)
        ours.ledger.restore(earlier)
        ours.scheduler.load_state(record.scheduler_state())
        # Ended without a verdict (completed a max_epochs since raised): they run on.
        ours.scheduler.continued = extend.runs_on(earlier)
        record.mark(Status.RUNNING)
        # What an earlier driver could not write to MLflow (a dead store, a crash) first.
        ours.mirror.reconcile(*_reported(earlier))
    ours.scheduler_record.save = record.save_scheduler_state

    with Interruption() as interruption, StopWatch(record.stop_requested, interruption), \
            record.journal() as journal:
        ours.ledger.journal = journal.append
        interruption.hooks.append(lambda: setattr(ours.ledger, "interrupted", True))
        if ours.storage is not None:  # a trial found storage_path full: stop, resumable
            ours.storage.stop = lambda: interruption.request(FULL)
        try:
            tuner.fit()
        finally:  # Tune ends the live footer itself, but not at a second Ctrl+C
            ours.progress.close()

    if resumed:  # after Ray's last upload: what a driver killed mid-upload left behind
        trialfiles.complete(ray_directory(record.directory), record.directory,
                            [t.trial_id for t in earlier.trials], keep=record.holds)
    if interruption.interrupted:
        status, reason = Status.INTERRUPTED, interruption.name
    elif ours.fail_fast.tripped:
        status, reason = Status.ABORTED, ours.fail_fast.tripped
    else:
        status, reason = Status.FINISHED, None
    full = storage_full(record.location.storage) if reason == FULL else None
    _mark(record, status, reason)
    results = record.results(job)
    if full is None:  # For optuna-dashboard and `report`; a failure is one line, never raised.
        study.persist_or_warn(record.directory, results, spec.resolved())
    ours.mirror.reconcile(*_reported(results))
    if not _flushed(ours.mirror, uri):
        log.warning("MLflow did not take every write within %.0f s; Ray's experiment state in "
                    "%s is complete", TRACKING_DEADLINE_S, record.directory)
    failures = ours.mirror.failures
    failures += _tracked(uri, "summarise the parent run", lambda: store.summarise_parent(
        uri, parent, metric=spec.objective.metric, best=_best(results, ours.mirror.runs),
        state=status.value, reason=reason, status=PARENT_STATUS[status],
        front=pareto.on_front(results) if spec.objective_pairs else None))
    return Ending(status, record.location, results, parent, resumed=resumed,
                  mirror_failures=failures, reason=reason, signal=interruption.signal, full=full)


FULL = "storage_path is full"  # the reason a search stopped by its StorageGuard is recorded with


def _mark(record: Experiment, status: Status, reason: Optional[str]) -> None:
    """Record how the search ended; a record that cannot be written for want of space keeps
    what it said (`running`: status calls it crashed, and the same command resumes it)."""
    try:
        record.mark(status, reason)
    except OSError as error:
        if not no_space(error):
            raise


# An interrupted search stays resumable: its parent run is KILLED until the next launch reopens it.
PARENT_STATUS = {Status.FINISHED: "FINISHED", Status.ABORTED: "FAILED",
                 Status.INTERRUPTED: "KILLED"}


def _reported(results: Results) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """(per-epoch results, sampled params) of the trials that reported: what the back-fill
    writes. A trial that never started (pending when fail-fast or a time limit stopped the
    search) gets no MLflow run."""
    reported = [t for t in results.trials if t.results]
    return ({t.trial_id: t.results for t in reported}, {t.trial_id: t.params for t in reported})


def _best(results: Results, runs: dict[str, str]) -> Optional[dict]:
    best = results.best
    if best is None:
        return None
    return {"trial_id": best.trial_id, "run_id": runs.get(best.trial_id, ""),
            "value": best.best, "params": best.params, "config": best.config}


def _flushed(mirror: MlflowMirror, uri: str) -> bool:
    """The mirror's queued writes taken: a tracking server's within TRACKING_DEADLINE_S; a local
    SQLite store's however long a busy machine makes them (the queue always drains: each write
    lands, or is dropped after its own retries), said every 30 s. Without the wait the process
    would end with them, and a finished search is not launched again to back-fill them."""
    if store.sqlite_file(uri) is None:
        return mirror.flush(TRACKING_DEADLINE_S)
    waited = 0.0
    while not mirror.flush(EVERY_S):
        waited += EVERY_S
        log.warning("%s", waiting_line("the local MLflow store to take the search's last writes",
                                       waited, load=machine_load()))
    return True


def _tracked(uri: str, what: str, call: Callable[[], Any]) -> int:
    """Run one synchronous MLflow call (a server's under the deadline, a local store's to its
    end); a failure is logged and counted, never raised: Ray's state has everything."""
    failed = store.bounded(uri, TRACKING_DEADLINE_S, call)
    if failed:
        log.warning("could not %s in MLflow: %s", what, failed)
    return 1 if failed else 0


def _open_parent(spec: SearchSpec, uri: str) -> str:
    return store.open_parent(
        uri, spec.tracking.experiment or spec.name, run_name=spec.name,
        tags={"spec_hash": spec.spec_hash(), "code_version": provenance.code_version(),
              **{f"version.{k}": v for k, v in provenance.versions().items()},
              **{f"hardware.{k}": v for k, v in provenance.hardware(
                  cluster_totals(), nodes=len(cluster.alive_nodes())).items()}},
        params={"trials": spec.budget.trials, "max_epochs": spec.budget.max_epochs,
                "sampler": spec.sampler.type, "scheduler": spec.scheduler.type,
                "metric": spec.objective.metric, "mode": spec.objective.mode},
        artifacts={"spec.json": redact(json.dumps(spec.resolved(), indent=2, default=str))})
