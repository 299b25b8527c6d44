"""A validated SearchSpec run as a Ray Tune experiment (local Ray or an existing cluster).

Launching the same spec again resumes the experiment from Ray's storage (`Tuner.restore`):
finished trials are not re-run, unfinished ones continue from their last checkpoint, and their
MLflow runs are reused through the parent-run id stored beside the experiment.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ray import tune

from search.experiment.outcome import outcome_of
from search.remote import cluster
from search.run import provenance
from search.run.checks import check_data, check_resources, check_storage, cluster_totals
from search.run.runtime import LaunchError, init_ray
from search.run.tuner import new_tuner, parts, restored_tuner
from search.spec.job import TrialJob
from search.spec.model import SearchSpec
from search.tracking import store
from search.tracking.mirror import MlflowMirror

log = logging.getLogger("resnet_search.launch")

STATE_FILE = "resnet_search.json"


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


def job_of(spec: SearchSpec) -> TrialJob:
    data = spec.data_config()
    data.root = str(Path(os.path.expanduser(data.root)).resolve())  # trials run in other dirs
    return spec.job(data)


def _state(path: Path) -> dict:
    file = path / STATE_FILE
    return json.loads(file.read_text()) if file.exists() else {}


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
        artifacts={"spec.json": json.dumps(spec.resolved(), indent=2, default=str)})


def launch(spec: SearchSpec, *, address: Optional[str] = None, console: Any = None,
           callbacks: tuple = (), reuse_actors: bool = True) -> LaunchReport:
    """Run the experiment, or resume it when its state exists under `storage_path/name`.
    `callbacks` and `reuse_actors` exist for benchmarks."""
    storage = Path(os.path.expanduser(spec.storage_path)).resolve()
    experiment = storage / spec.name
    uri = tracking_uri(spec.tracking.mlflow_uri)
    problem = store.probe(uri)
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
        tuner = restored_tuner(spec, job, experiment)
    else:
        parent = _open_parent(spec, uri)
        tuner = new_tuner(spec, job, storage, uri, parent, console, callbacks, reuse_actors)
        experiment.mkdir(parents=True, exist_ok=True)
        (experiment / STATE_FILE).write_text(json.dumps(
            {"parent_run_id": parent, "spec_hash": spec.spec_hash(), "tracking_uri": uri}))
    mirror, stops, fail_fast = parts(tuner)
    grid = tuner.fit()
    report = summarise(grid, spec, experiment, uri, parent, resumed, mirror, stops)
    report.aborted = fail_fast.tripped if fail_fast else None
    if report.aborted:
        state = _state(experiment)
        (experiment / STATE_FILE).write_text(json.dumps({**state, "aborted": report.aborted}))
    best = report.trials[0] if report.trials else None
    failed = store.within(60, lambda: store.summarise_parent(uri, parent, best and {
        "trial_id": best.trial_id, "run_id": best.run_id, "config": best.config,
        "metrics": {spec.objective.metric: best.best}},
        status="FAILED" if report.aborted else "FINISHED", aborted=report.aborted))
    if failed:  # the search is done and Ray's state has it all; say so, don't fail
        log.warning("could not summarise the parent MLflow run: %s", failed)
        report.mirror_failures += 1
    return report


def summarise(grid: Any, spec: SearchSpec, experiment: Path, uri: str, parent: str, resumed: bool,
              mirror: Optional[MlflowMirror], stops: Any) -> LaunchReport:
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
