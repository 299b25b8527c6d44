"""Ray Tune assembly: a validated spec becomes a `tune.Tuner` (searcher, scheduler, trainable,
callbacks, storage), new or restored from the experiment's storage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from ray import tune
from ray.tune.callback import CallbackList

from search.engine import compat
from search.engine.budget import budget_trials
from search.engine.ledger import Ledger
from search.engine.limiter import PausedFreeLimiter
from search.engine.samplers import FidelityAwareOptunaSearch, build_searcher
from search.engine.schedulers import SchedulerRecord, build_scheduler
from search.experiment import snapshot, trust
from search.experiment.decide import RAY_DIR, ray_directory
from search.experiment.storage import StoragePath, is_local
from search.run.checks import cluster_totals, slots
from search.run.errors import LaunchError
from search.run.failfast import FailFast
from search.run.fullstorage import StorageGuard
from search.run.progress import ProgressPrinter
from search.run.trainable import run_trial
from search.run.trialfiles import CSVLogger, JsonLogger
from search.run.wholefiles import storage_filesystem
from search.spec.job import TrialJob
from search.spec.model import SearchSpec
from search.tracking.mirror import MlflowMirror


def trainable(spec: SearchSpec, job: TrialJob) -> Any:
    resources = {"cpu": spec.trial.resources.cpu, "gpu": spec.trial.resources.gpu}
    return tune.with_resources(tune.with_parameters(run_trial, job=job), resources)


def new_tuner(spec: SearchSpec, job: TrialJob, experiment: StoragePath, uri: str, parent: str,
              console: Any, callbacks: tuple, reuse_actors: bool, warm: Any = None) -> tune.Tuner:
    """A new Ray Tune experiment in the `ray/` folder of the experiment directory
    `experiment` (search/experiment/decide.py says why there); its searcher told what `warm`
    (search/engine/warm.py) knows before it proposes anything. A resumed one has it in its
    pickled study."""
    ledger = Ledger(spec.budget.max_epochs, stop_tag=spec.scheduler.stop_tag)
    scheduler = build_scheduler(spec.scheduler, spec.budget.max_epochs, ledger,
                                spec.objective_pairs)
    mirror = MlflowMirror(uri, parent, job, ledger,
                          conditional=[name for name, p in spec.space.items() if p.when])
    printer = ProgressPrinter(spec.objective.metric, spec.budget.max_epochs, spec.budget.trials,
                              ledger, console=console, mode=spec.objective.mode,
                              stop_label=spec.scheduler.label, objectives=spec.objective_pairs,
                              constraints=tuple(c.triple() for c in spec.constraints))
    fail_fast = FailFast(spec.trial.abort_on_same_error, ledger)
    searcher, limit = limited(spec, build_searcher(spec, ledger, warm), spec.scheduler.trials_out(
        spec.budget.max_epochs,
        spec.trial.max_concurrent or slots(spec.trial.resources, cluster_totals())))
    return tune.Tuner(
        trainable(spec, job),
        tune_config=tune.TuneConfig(
            metric=spec.objective.metric, mode=spec.objective.mode,
            search_alg=searcher, scheduler=scheduler,
            num_samples=spec.budget.trials,
            max_concurrent_trials=limit,
            time_budget_s=spec.budget.time_limit_s,
            # Warm workers: the next trial reuses the process and its cached dataset.
            reuse_actors=reuse_actors,
            trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=tune.RunConfig(
            name=RAY_DIR, storage_path=str(experiment),
            storage_filesystem=storage_filesystem(experiment),  # each file whole (wholefiles)
            # The storage guard first (it takes back a failure Ray counted for a full disk),
            # then the ledger: every other callback reads what the ledger decided.
            callbacks=[StorageGuard(), ledger, mirror, printer, fail_fast,
                       SchedulerRecord(scheduler),
                       *callbacks, JsonLogger(), CSVLogger()],
            stop=fail_fast, verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.trial.max_failures),
            # Two, not one: Ray deletes the previous checkpoint as soon as it registers a new
            # one, and saves the experiment state (which names the checkpoint a restore starts
            # from) only at the end of that step. A driver killed in between left a state
            # naming a deleted checkpoint, and the resumed trial failed ("Could not recover
            # from checkpoint as it does not exist on storage anymore"; CI caught it).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            sync_config=sync_config(experiment)))


def limited(spec: SearchSpec, searcher: Any, limit: int) -> tuple[Any, Optional[int]]:
    """(the searcher Tune gets, the concurrency limit Tune applies): where the scheduler's paused
    trials hold no place, the searcher limited by our own limiter, which does not count them
    (search.engine.limiter), and none of Tune's."""
    if spec.scheduler.paused_hold_place:
        return searcher, limit
    return PausedFreeLimiter(searcher, limit), None


# How often the driver uploads its trials' results (result.json, params.json) and Ray's
# experiment state to an object store. Ray's default, 300 s, would leave `status` and `list`
# five minutes behind; the files are small (checkpoints go up from the workers directly).
OBJECT_STORE_SYNC_S = 15


def sync_config(storage: Any) -> tune.SyncConfig:
    if is_local(storage):
        return tune.SyncConfig()
    return tune.SyncConfig(sync_period=OBJECT_STORE_SYNC_S)


def restored_tuner(spec: SearchSpec, job: TrialJob, experiment: StoragePath,
                   console: Any = None) -> tune.Tuner:
    """The experiment Ray saved in the experiment directory `experiment`, restored; refused
    (LaunchError, nothing unpickled) when any file Ray would unpickle, or a directory holding
    one, could have been written by someone else: restoring runs whatever code those files name
    (search/experiment/trust.py). A snapshot file the last driver left cut short is set aside
    first, saying so (search/experiment/snapshot.py)."""
    problems = trust.untrusted(experiment)
    if problems:
        raise LaunchError(trust.refusal(experiment, problems))
    folder = ray_directory(experiment)
    lost = snapshot.damaged(folder)
    if lost:
        raise LaunchError(
            f"cannot resume {experiment}: Ray's {', '.join(lost)} (in {folder}) was cut short "
            "when the last driver was killed mid-copy, and the search cannot go on exactly "
            "without it; nothing was changed. Launch the spec under a new name (--name) to "
            "search again, or remove the experiment (resnet-search rm)")
    for name in snapshot.set_aside_cut_short(folder):
        said = (f"Ray's {name} was cut short when the last driver was killed (kept as "
                f"{name}{snapshot.SET_ASIDE}); resuming from its whole snapshot files")
        if console is not None:
            console.print(said, highlight=False, markup=False)
    tuner = tune.Tuner.restore(str(folder), trainable(spec, job), resume_errored=True,
                               storage_filesystem=storage_filesystem(folder))
    callbacks = compat.tuner_run_config(tuner).callbacks or []
    if is_local(folder) and not any(isinstance(c, Ledger) for c in callbacks):
        # Saved before the ledger (resnet-search 0.2): `parts` puts one first, and Ray, which
        # hands callback states back by position, would give each callback its neighbour's
        # (the mirror would lose its runs). Each gets its own here; Ray's later call gives the
        # ledger the mirror's state, which a ledger ignores (it has no set_state), and the
        # others nothing (0.2's other callbacks saved none).
        saved = CallbackList(callbacks)
        if saved.can_restore(str(folder)):
            saved.restore_from_dir(str(folder))
    # The spec's number of trials, not the one Ray saved: an extended experiment's is larger.
    budget_trials(tuner, spec.budget.trials)
    return tuner


@dataclass(frozen=True)
class Parts:
    """Our pieces of a tuner, also of one Ray restored from its pickle, all linked to one
    ledger."""

    ledger: Ledger
    mirror: MlflowMirror
    scheduler: Any  # a Ray scheduler with search.engine.schedulers.Recording mixed in
    scheduler_record: SchedulerRecord
    fail_fast: FailFast
    progress: ProgressPrinter
    searcher: Any  # the searcher Tune asks (FidelityAwareOptunaSearch, or stock OptunaSearch)
    storage: Any = None  # StorageGuard; None in a tuner saved before it existed


def unlimited(searcher: Any) -> Any:
    return searcher.searcher if isinstance(searcher, PausedFreeLimiter) else searcher


def parts(tuner: tune.Tuner, spec: SearchSpec) -> Parts:
    """The tuner's parts, each linked to the one ledger among its callbacks. A tuner pickled
    by resnet-search 0.2 has none: one is made and put first, and the parts are linked to it."""
    run_config = compat.tuner_run_config(tuner)
    callbacks = run_config.callbacks or []

    def one(kind: type) -> Any:
        found = [c for c in callbacks if isinstance(c, kind)]
        if len(found) != 1:
            raise RuntimeError(f"the tuner has {len(found)} {kind.__name__} callbacks, not one")
        return found[0]

    ledgers = [c for c in callbacks if isinstance(c, Ledger)]
    if not ledgers:
        ledgers = [Ledger(spec.budget.max_epochs, stop_tag=spec.scheduler.stop_tag)]
        run_config.callbacks = callbacks = [ledgers[0], *callbacks]
    ledger = one(Ledger)
    ours = Parts(ledger=ledger, mirror=one(MlflowMirror),
                 scheduler=compat.tuner_scheduler(tuner), scheduler_record=one(SchedulerRecord),
                 fail_fast=one(FailFast), progress=one(ProgressPrinter),
                 searcher=unlimited(compat.tuner_searcher(tuner)),
                 storage=next((c for c in callbacks if isinstance(c, StorageGuard)), None))
    linked = [ours.mirror, ours.scheduler, ours.fail_fast, ours.progress]
    if isinstance(ours.searcher, FidelityAwareOptunaSearch):  # the stock one decides nothing
        linked.append(ours.searcher)
    for part in linked:
        part.ledger = ledger
    return ours


def with_budget(tuner: tune.Tuner, ours: Parts, spec: SearchSpec, job: TrialJob) -> Parts:
    """A restored tuner's parts given the spec's budget (the launch's, which an extended
    experiment raised): the counts of the ledger and the progress lines, and, when max_epochs
    grew, a scheduler built for it (ASHA's rungs above the old ones are new; the record's
    state is loaded into it next). Parts unpickle with the budget they were made with."""
    budget = spec.budget
    if ours.ledger.max_epochs != budget.max_epochs:
        scheduler = build_scheduler(spec.scheduler, budget.max_epochs, ours.ledger,
                                    spec.objective_pairs)
        compat.set_tuner_scheduler(tuner, scheduler)
        ours.scheduler_record.scheduler = scheduler
        ours = replace(ours, scheduler=scheduler)
    ours.ledger.max_epochs = ours.progress.max_epochs = budget.max_epochs
    ours.progress.trials = budget.trials
    ours.mirror.job = job  # each trial's params in MLflow: its epochs are the new max_epochs
    return ours
