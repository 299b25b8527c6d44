"""The search as an Optuna study that people can open: rebuilt from the experiment record and
written to `<experiment>/study.db`, a SQLite storage that optuna-dashboard opens
(`optuna-dashboard sqlite:///runs/NAME/study.db`).

The live study exists only inside Ray's pickled searcher, which nothing but a resumed driver
may unpickle. Ray's results are the truth, so the persisted study is rebuilt from scratch from
them at the end of every launch (and in memory by `resnet-search report`), trial by trial as the
sampler was told about it:

- parameters replayed through the space's own define-by-run function (`space.sample`) on an
  `optuna.trial.FixedTrial`, so their distributions are the ones the search sampled from;
- every finite per-epoch value of the objective as an intermediate value (step = epoch);
- the state from the trial's outcome through the searcher's table (`trial_states`): a trial ASHA
  stopped is PRUNED with its last value (Optuna's convention), a completed one COMPLETE with its
  final epoch's value, what the sampler ignored is FAIL; a trial still running (or waiting) when
  the launch ended is RUNNING (WAITING). A trial whose params cannot be read back is kept, with
  its curve, but never as COMPLETE.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.engine.quiet import quiet_optuna
from search.engine.space import optuna_params, sample
from search.engine.trial_states import OPTUNA_STATE
from search.experiment.results import Results, TrialRecord
from search.experiment.storage import StoragePath, as_path, is_local
from search.spec import objective
from search.spec.outcome import Outcome
from search.spec.params import ChoiceParam, FloatParam, IntParam

log = logging.getLogger("resnet_search.study")

STUDY_FILE = "study.db"
DIRECTION = {"max": "maximize", "min": "minimize"}
# Ray's status of a trial the launch left unfinished (a resume continues it) -> Optuna's.
UNFINISHED = {"RUNNING": TrialState.RUNNING, "PAUSED": TrialState.RUNNING,
              "PENDING": TrialState.WAITING}


def study_url(directory: StoragePath) -> str:
    """The storage URL optuna-dashboard takes for a local experiment's study."""
    return f"sqlite:///{Path(directory).absolute() / STUDY_FILE}"


# ---- the pure rules ----

def state_of(outcome: Outcome, status: str, stopped_trials: str = "pruned") -> TrialState:
    """The Optuna state of a trial: Ray's status while it is unfinished, else its outcome as the
    searcher told it. With `sampler.stopped_trials: complete` the stock searcher told a trial
    that ended early without an error COMPLETE, with its partial-budget value."""
    if status in UNFINISHED:
        return UNFINISHED[status]
    if stopped_trials == "complete" and outcome in (Outcome.STOPPED, Outcome.KILLED):
        return TrialState.COMPLETE
    return OPTUNA_STATE[outcome]


def value_of(state: TrialState, trial: TrialRecord) -> Optional[float]:
    """What the study holds as the trial's value: for COMPLETE the objective at its last epoch
    (what the searcher tells Optuna; the leaderboard ranks by the best epoch instead), for
    PRUNED its last intermediate value (as Optuna's `tell` stores it), else none."""
    if state == TrialState.COMPLETE:
        return final_value(trial)
    if state == TrialState.PRUNED:
        curve = trial.curve()
        return curve[-1][1] if curve else None
    return None


def final_value(trial: TrialRecord) -> Optional[float]:
    """The objective at the trial's last epoch, when finite."""
    last = trial.results[-1].get(trial.metric) if trial.results else None
    return float(last) if objective.finite(last) else None


def times_of(trial: TrialRecord) -> tuple[Optional[float], Optional[float]]:
    """(start, end) in seconds since the epoch, from Ray's `timestamp` (when a result was
    reported) and `time_this_iter_s` (how long that epoch took); None when not reported."""
    stamps = [r for r in trial.results if objective.finite(r.get("timestamp"))]
    if not stamps:
        return None, None
    first = stamps[0]
    took = first.get("time_this_iter_s")
    start = float(first["timestamp"]) - (float(took) if objective.finite(took) else 0.0)
    return start, float(stamps[-1]["timestamp"])


# ---- one trial ----

def replayed(space: Mapping[str, Any], params: Mapping[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params as Optuna stores them, their distributions): the recorded params pushed through
    the define-by-run function the search sampled with. ValueError when they do not replay (a
    params.json that could not be read, a value outside the space)."""
    try:
        fixed = optuna.trial.FixedTrial(optuna_params(space, params))
    except (KeyError, ValueError) as error:  # a name, or a list value, the space does not have
        raise ValueError(f"recorded params {dict(params)} are not a point of the space: "
                         f"{error}") from None
    with warnings.catch_warnings():
        # FixedTrial only warns of a value outside its distribution: here that is an error.
        warnings.simplefilter("error", UserWarning)
        try:
            sample(space, fixed)
        except (ValueError, UserWarning) as error:
            raise ValueError(f"recorded params {dict(params)} are not a point of the space: "
                             f"{error}") from None
    return dict(fixed.params), dict(fixed.distributions)


def values_of(state: TrialState, trial: TrialRecord, results: Results
              ) -> Optional[list[float]]:
    """With several objectives, what the study holds as the trial's values: every objective at
    its last epoch for COMPLETE (what the searcher tells Optuna), none otherwise (Optuna keeps
    no intermediate value, nor a pruned trial's values, for several)."""
    if state != TrialState.COMPLETE:
        return None
    found = results.values(trial)
    return None if any(v is None for v in found.values()) else list(found.values())


def frozen(trial: TrialRecord, space: Mapping[str, Any], stopped_trials: str,
           now: float, results: Optional[Results] = None) -> FrozenTrial:
    """The Optuna trial of one recorded trial (number and id are given by the storage);
    `results` of a search of several objectives gives it their values."""
    several = results is not None and bool(results.objectives)
    state = state_of(trial.outcome, trial.status, stopped_trials)
    attrs: dict[str, Any] = {"trial_id": trial.trial_id, "outcome": trial.outcome.value,
                             "epochs": trial.epochs, "ray_status": trial.status}
    if objective.finite(trial.best):
        attrs["best"] = trial.best
    if trial.error:
        attrs["error"] = trial.error
    try:
        params, distributions = replayed(space, trial.params)
    except ValueError as error:
        # Kept without params rather than dropped: the trial ran, its curve still counts.
        params, distributions = {}, {}
        attrs["params_error"] = str(error)
    value = values_of(state, trial, results) if several else value_of(state, trial)
    # A COMPLETE trial needs a final value to rank by, and its params: Optuna's plots take the
    # search space from the completed trials.
    if state == TrialState.COMPLETE and (value is None or "params_error" in attrs):
        state, value = TrialState.FAIL, None

    start, end = times_of(trial)
    if state == TrialState.WAITING:
        start = end = None
    elif state == TrialState.RUNNING:
        start, end = (start or now), None
    else:
        start, end = (start or now), (end or start or now)
    made = FrozenTrial(
        number=0, trial_id=0, state=state, value=None if several else value,
        values=value if several else None,
        datetime_start=_when(start), datetime_complete=_when(end),
        params=params, distributions=distributions, user_attrs=attrs, system_attrs={},
        intermediate_values={} if several else dict(trial.curve()))
    if results is not None and state != TrialState.FAIL and trial.results:
        # as the searcher told them: the Pareto plot shows the infeasible trials apart
        for metric, side, bound in results.constraints:
            made.set_constraint(objective.constraint_key(metric, side, bound),
                                objective.violation(trial.results[-1].get(metric), side, bound))
    return made


def _when(seconds: Optional[float]) -> Optional[datetime.datetime]:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds)


# ---- the study ----

class DamagedSpace(ValueError):
    """A saved spec's `space` that does not read back as distributions."""


def space_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The space of a resolved spec, as the distributions the search sampled from. Read back,
    not validated again: the spec was validated when the search started, and checking its
    registry names (block, optimizer) would import torch into a report."""
    kinds = {"float": FloatParam, "int": IntParam, "choice": ChoiceParam}
    space = {}
    for name, raw in (spec.get("space") or {}).items():
        found = [kind for kind in kinds if isinstance(raw, dict) and kind in raw]
        if len(found) != 1:
            raise DamagedSpace(f"space.{name} is {raw!r}, not one float, int or choice")
        try:
            space[name] = kinds[found[0]].model_validate(raw)
        except ValueError as error:  # pydantic's ValidationError
            raise DamagedSpace(f"space.{name} is {raw!r}: {error}") from None
    return space


def creation_order(results: Results) -> list[TrialRecord]:
    """The trials in the order they started (Optuna numbers them so; the optimization history's
    x axis): by their first report, the trials that never reported last. Ray's trial ids are
    random, and the record lists the trials best first."""
    def key(item: tuple[int, TrialRecord]) -> tuple[float, int]:
        start = times_of(item[1])[0]
        return (float("inf") if start is None else start, item[0])

    return [trial for _, trial in sorted(enumerate(results.trials), key=key)]


def build(results: Results, spec: Mapping[str, Any],
          storage: Optional[str | optuna.storages.BaseStorage] = None) -> optuna.Study:
    """The study of an experiment from its results and its resolved spec (the record's
    spec.json, or `SearchSpec.resolved()`), in `storage` (default: in memory)."""
    space = space_of(spec)
    stopped_trials = str((spec.get("sampler") or {}).get("stopped_trials", "pruned"))
    with quiet_optuna():
        study = optuna.create_study(storage=storage, study_name=str(spec["name"]),
                                    directions=[DIRECTION[m] for _, m in results.all_objectives])
        study.set_metric_names([m for m, _ in results.all_objectives])
        study.set_user_attr("metric", results.metric)
        study.set_user_attr("mode", results.mode)
        now = datetime.datetime.now().timestamp()
        study.add_trials([frozen(t, space, stopped_trials, now, results)
                          for t in creation_order(results)])
    return study


def persist(directory: StoragePath, results: Results, spec: Mapping[str, Any]) -> StoragePath:
    """Write the study to `<directory>/study.db`, replacing the one before (Ray's record is the
    truth, so it is rebuilt whole). Built in a local scratch file (Optuna commits trial by
    trial, which on shared storage would be one sync each), then copied beside the target and
    renamed over it, so that a dashboard reading it never sees half a study; on an object store
    uploaded in one PUT."""
    directory = as_path(directory)
    target = directory / STUDY_FILE
    with tempfile.TemporaryDirectory(prefix="resnet-search-study-") as scratch:
        built = Path(scratch) / STUDY_FILE
        _write(built, results, spec)
        if is_local(directory):
            _install(built, target)
        else:
            target.write_bytes(built.read_bytes())
    return target


def _install(built: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp, whose file is private (0600): the study is for whoever may read the
    # experiment (a teammate's dashboard), so it gets the umask's mode like Ray's own files.
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "xb") as handle, open(built, "rb") as source:
            shutil.copyfileobj(source, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def persist_or_warn(directory: StoragePath, results: Results, spec: Mapping[str, Any]
                    ) -> Optional[str]:
    """`persist`, for the driver at the end of a launch: a failure is logged in one line and
    returned, never raised (the record has everything; the next launch writes it again)."""
    try:
        persist(directory, results, spec)
    except Exception as error:  # noqa: BLE001 - nothing about the study may fail a search
        why = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
        log.warning("could not write the Optuna study %s: %s", as_path(directory) / STUDY_FILE,
                    why)
        return why
    return None


def _write(path: Path, results: Results, spec: Mapping[str, Any]) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    try:
        build(results, spec, storage)
    finally:
        storage.engine.dispose()  # close the file before it is renamed or uploaded
