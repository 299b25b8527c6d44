"""A validated SearchSpec run as a Ray Tune experiment (local Ray or an existing cluster).

Launching the same spec again resumes the experiment from Ray's storage (`Tuner.restore`):
finished trials are not re-run, unfinished ones continue from their last checkpoint, and their
MLflow runs are reused through the parent-run id stored beside the experiment.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import ray
from ray import tune
from ray.tune.search.optuna import OptunaSearch

import resnet_core
import search
from resnet_core.data import DatasetMissingError, load_data
from search import cluster, provenance, tracking
from search.errors import Problem, SpecError
from search.failfast import FailFast
from search.progress import ProgressPrinter
from search.schedulers import KeepStopRecord, build_scheduler
from search.searcher import FidelityAwareOptunaSearch, build_sampler
from search.space import define_by_run
from search.trainable import TrialJob, run_trial
from search.verdict import outcome_of

STATE_FILE = "resnet_search.json"


class LaunchError(RuntimeError):
    """The experiment cannot start or continue; the message says why and what to do."""


@dataclass
class TrialSummary:
    trial_id: str
    best: float
    epochs: int
    outcome: str
    config: dict
    run_id: str = ""


@dataclass
class LaunchReport:
    experiment_path: str
    tracking_uri: str
    parent_run_id: str
    resumed: bool
    trials: list[TrialSummary] = field(default_factory=list)
    mirror_failures: int = 0
    aborted: Optional[str] = None  # why the search was stopped early (search/failfast.py)


def tracking_uri(uri: str) -> str:
    """A relative sqlite path is made absolute: Ray workers and `mlflow ui` run elsewhere."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def init_ray(address: Optional[str]) -> None:
    """Local Ray by default; `address` joins an existing cluster (search/cluster.py). Token
    authentication stays on (Ray's default): a local cluster creates ~/.ray/auth_token, a
    remote one needs RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or that file."""
    if ray.is_initialized():
        return
    # A per-epoch checkpoint with num_to_keep forces a state snapshot each time; with short
    # epochs Ray warns about it on every trial. The snapshot is what makes resume exact: keep it.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Our progress lines and final table replace Ray's status boxes (verbose=0 then is silent).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # A failed trial is one line with its reason (search/progress.py); Ray's traceback of it is
    # kept in the trial's error.txt instead of flooding the terminal.
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    # The same errors again when a stopped search drops the results of trials that had failed.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    if address:
        # Workers of a remote cluster get our code shipped with the job.
        try:
            cluster.join(address, runtime_env={"py_modules": [resnet_core, search]})
        except cluster.ClusterError as error:
            raise LaunchError(str(error)) from None
    else:
        # "local": always a Ray of our own. With no address, Ray joins a cluster that `ray start`
        # left on this machine, and retries forever when that one has died since.
        ray.init(address="local", include_dashboard=False, log_to_driver=False)


def check_resources(spec: Any) -> None:
    """Resources the trials ask for must exist on some node (checked before any training)."""
    wanted = spec.trial.resources
    nodes = [n["Resources"] for n in cluster.alive_nodes()]
    problems = []
    most_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
    most_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    if wanted.gpu > 0 and most_gpu == 0:
        problems.append(Problem("trial.resources.gpu", wanted.gpu,
                                f"is {wanted.gpu:g} but the Ray cluster has no GPUs; use gpu: 0 "
                                "or a cluster with GPUs"))
    elif wanted.gpu > most_gpu:
        problems.append(Problem("trial.resources.gpu", wanted.gpu,
                                f"is {wanted.gpu:g} but no node has more than {most_gpu:g} GPUs"))
    if wanted.cpu > most_cpu:
        problems.append(Problem("trial.resources.cpu", wanted.cpu,
                                f"is {wanted.cpu:g} but no node has more than {most_cpu:g} CPUs"))
    if problems:
        raise SpecError(problems, source="cluster check")


def check_storage(storage: Path, console: Any) -> None:
    """On a cluster, storage_path must be one directory every node sees (checked with a marker
    file read on each node, before any training)."""
    nodes, missing = cluster.unshared_storage(storage)
    if missing:
        raise SpecError([Problem(
            "storage_path", str(storage),
            f"is {storage} but that directory is not visible from {len(missing)} of {nodes} "
            f"nodes ({', '.join(missing)}); trials checkpoint there and resume on any node, so "
            "on a cluster it must be a directory every node mounts at the same path (e.g. NFS)")],
            source="cluster check")
    if console is not None and nodes > 1:
        console.print(f"storage_path {storage}: the same directory on all {nodes} nodes",
                      highlight=False, markup=False)


def slots(resources: Any, cluster: dict) -> int:
    """How many trials of this size the cluster runs at once. Used as the default
    `max_concurrent`: with a searcher, Tune otherwise keeps a single trial pending, so free
    slots wait for it (measured: search efficiency 0.78 without vs 0.89 with, on 2 CPUs)."""
    fits = [int(cluster.get("CPU", 0) // resources.cpu)]
    if resources.gpu > 0:
        fits.append(int(round(cluster.get("GPU", 0) / resources.gpu, 6)))
    return max(1, min(fits))


def check_data(job: TrialJob) -> None:
    """Read the data once on the driver before any trial starts: a missing dataset fails here,
    in seconds, instead of in every trial; and `download: true` fetches it once instead of by
    every concurrent trial at the same time."""
    try:
        load_data(job.data)
    except DatasetMissingError as error:
        raise SpecError([Problem("data.root", job.data.root, str(error))],
                        source="data check") from None


def _state(path: Path) -> dict:
    file = path / STATE_FILE
    return json.loads(file.read_text()) if file.exists() else {}


def _searcher(spec: Any, scheduler: Any) -> OptunaSearch:
    common = dict(space=define_by_run(spec.space), metric=spec.objective.metric,
                  mode=spec.objective.mode, sampler=build_sampler(spec.sampler))
    if spec.sampler.stopped_trials == "complete":
        return OptunaSearch(**common)  # stock Ray behaviour, kept for comparison
    return FidelityAwareOptunaSearch(**common, max_epochs=spec.budget.max_epochs,
                                     scheduler_stops=scheduler.stopped.__contains__)


def _trainable(spec: Any, job: TrialJob) -> Any:
    resources = {"cpu": spec.trial.resources.cpu, "gpu": spec.trial.resources.gpu}
    return tune.with_resources(tune.with_parameters(run_trial, job=job), resources)


def job_of(spec: Any) -> TrialJob:
    data = spec.data_config()
    data.root = str(Path(os.path.expanduser(data.root)).resolve())  # trials run in other dirs
    return TrialJob(spec=spec, data=data)


def _new_tuner(spec: Any, job: TrialJob, storage: Path, uri: str, console: Any,
               callbacks: tuple, reuse_actors: bool) -> tuple:
    scheduler = build_scheduler(spec.scheduler, spec.budget.max_epochs)
    stops = scheduler.stopped.__contains__
    parent = tracking.open_parent(
        uri, spec.tracking.experiment or spec.name, run_name=spec.name,
        tags={"spec_hash": spec.spec_hash(), "code_version": provenance.code_version(),
              **{f"version.{k}": v for k, v in provenance.versions().items()},
              **{f"hardware.{k}": v for k, v in provenance.hardware(
                  ray.cluster_resources(), nodes=len(cluster.alive_nodes())).items()}},
        params={"trials": spec.budget.trials, "max_epochs": spec.budget.max_epochs,
                "sampler": spec.sampler.type, "scheduler": spec.scheduler.type,
                "metric": spec.objective.metric, "mode": spec.objective.mode},
        artifacts={"spec.json": json.dumps(spec.resolved(), indent=2, default=str)})
    mirror = tracking.MlflowMirror(uri, parent, job, scheduler_stops=stops)
    printer = ProgressPrinter(spec.objective.metric, spec.budget.max_epochs, spec.budget.trials,
                              scheduler_stops=stops, console=console)
    fail_fast = FailFast(spec.trial.abort_on_same_error, spec.budget.max_epochs)
    tuner = tune.Tuner(
        _trainable(spec, job),
        tune_config=tune.TuneConfig(
            metric=spec.objective.metric, mode=spec.objective.mode,
            search_alg=_searcher(spec, scheduler), scheduler=scheduler,
            num_samples=spec.budget.trials,
            max_concurrent_trials=spec.trial.max_concurrent or slots(
                spec.trial.resources, ray.cluster_resources()),
            time_budget_s=spec.budget.time_limit_s,
            # Warm workers: the next trial reuses the process and its cached dataset.
            reuse_actors=reuse_actors,
            trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=tune.RunConfig(
            name=spec.name, storage_path=str(storage),
            callbacks=[mirror, printer, fail_fast, KeepStopRecord(scheduler.stopped),
                       *callbacks], stop=fail_fast, verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.trial.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    return tuner, parent


def launch(spec: Any, *, address: Optional[str] = None, console: Any = None,
           callbacks: tuple = (), reuse_actors: bool = True) -> LaunchReport:
    """Run the experiment, or resume it when its state exists under `storage_path/name`.
    `callbacks` and `reuse_actors` exist for benchmarks."""
    storage = Path(os.path.expanduser(spec.storage_path)).resolve()
    experiment = storage / spec.name
    uri = tracking_uri(spec.tracking.mlflow_uri)
    problem = tracking.probe(uri)
    if problem:
        raise LaunchError(f"MLflow tracking store {uri} is unusable: {problem}")
    state = _state(experiment)
    if state.get("aborted"):
        # Its searcher was told to finish, so Ray cannot resume it: start anew, keep it aside.
        kept = experiment.with_name(f"{experiment.name}.aborted-{time.strftime('%Y%m%d-%H%M%S')}")
        experiment.rename(kept)
        if console is not None:
            console.print(f"the last launch of '{spec.name}' was aborted ({state['aborted']}); "
                          f"starting it anew, the aborted experiment is kept in {kept}",
                          highlight=False, markup=False)
        state = {}
    # No state, or state from before Tune's first snapshot: nothing was computed, start anew.
    resumed = bool(state) and tune.Tuner.can_restore(str(experiment))
    if resumed and state.get("spec_hash") != spec.spec_hash():
        raise LaunchError(
            f"{experiment} holds experiment '{spec.name}' run with a different spec "
            f"(hash {state.get('spec_hash')} vs {spec.spec_hash()}); launch it under a new "
            "name (--name NEW) to start a new experiment — the old one is kept")
    job = job_of(spec)
    if address is None:  # on a remote cluster the data lives where the workers run
        check_data(job)
    init_ray(address)
    check_resources(spec)
    if address is not None:
        check_storage(storage, console)
    if resumed:
        parent = state["parent_run_id"]
        tuner = tune.Tuner.restore(str(experiment), _trainable(spec, job), resume_errored=True)
    else:
        tuner, parent = _new_tuner(spec, job, storage, uri, console, callbacks, reuse_actors)
        experiment.mkdir(parents=True, exist_ok=True)
        (experiment / STATE_FILE).write_text(json.dumps(
            {"parent_run_id": parent, "spec_hash": spec.spec_hash(), "tracking_uri": uri}))
    mirror, stops, fail_fast = _parts(tuner)
    grid = tuner.fit()
    report = summarise(grid, spec, experiment, uri, parent, resumed, mirror, stops)
    report.aborted = fail_fast.tripped if fail_fast else None
    if report.aborted:
        state = _state(experiment)
        (experiment / STATE_FILE).write_text(json.dumps({**state, "aborted": report.aborted}))
    best = report.trials[0] if report.trials else None
    failed = tracking.within(60, lambda: tracking.summarise_parent(uri, parent, best and {
        "trial_id": best.trial_id, "run_id": best.run_id, "config": best.config,
        "metrics": {spec.objective.metric: best.best}},
        status="FAILED" if report.aborted else "FINISHED", aborted=report.aborted))
    if failed:  # the search is done and Ray's state has it all; say so, don't fail
        tracking.log.warning("could not summarise the parent MLflow run: %s", failed)
        report.mirror_failures += 1
    return report


def _parts(tuner: tune.Tuner) -> tuple[Optional[tracking.MlflowMirror], Any, Optional[FailFast]]:
    """Our mirror, the scheduler's stop record and the fail-fast stopper, also for a tuner Ray
    restored from its pickle (Ray offers no public accessor; `_local_tuner` is the driver-side
    TunerInternal)."""
    internal = tuner._local_tuner
    run_config = internal.get_run_config()
    mirror = next((c for c in run_config.callbacks or []
                   if isinstance(c, tracking.MlflowMirror)), None)
    fail_fast = run_config.stop if isinstance(run_config.stop, FailFast) else None
    return mirror, internal._tune_config.scheduler.stopped.__contains__, fail_fast


def summarise(grid: Any, spec: Any, experiment: Path, uri: str, parent: str, resumed: bool,
              mirror: Optional[tracking.MlflowMirror], stops: Any) -> LaunchReport:
    metric, sign = spec.objective.metric, (1 if spec.objective.mode == "max" else -1)
    report = LaunchReport(str(experiment), uri, parent, resumed,
                          mirror_failures=mirror.failures if mirror else 0)
    for result in grid:
        history = result.metrics_dataframe
        values = [] if history is None or metric not in history else [
            v for v in history[metric].tolist() if isinstance(v, float) and math.isfinite(v)]
        last = result.metrics or {}
        trial_id = Path(result.path).name  # trial_dirname_creator names it by the trial id
        verdict = outcome_of(last, max_epochs=spec.budget.max_epochs,
                             errored=result.error is not None,
                             stopped_by_scheduler=stops(trial_id))
        report.trials.append(TrialSummary(
            trial_id=trial_id,
            best=(max(values, key=lambda v: sign * v) if values else sign * -math.inf),
            epochs=int(last.get("epoch", 0)), outcome=verdict.value,
            config=dict(result.config or {}),  # None: the search stopped before it started
            run_id=(mirror.runs.get(trial_id, "") if mirror else "")))
    report.trials.sort(key=lambda t: -sign * t.best)
    return report
