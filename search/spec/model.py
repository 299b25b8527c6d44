"""A search spec: the validated YAML that says what a search may vary and how it runs.

Pydantic v2 models with `extra="forbid"` and strict types at every level (lax mode would take
"yes" as True and 2.0 as 2). Every rejection becomes a `SpecError` listing all problems of the
file at once, each with its dotted path, value and rule, so a typo never costs a GPU-hour.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import os
import unicodedata
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Literal, Optional, Union
from urllib.parse import urlsplit

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError,
                      ValidationInfo, create_model, field_validator, model_validator)

from resnet_core.config import DataConfig, knob_of
from search.spec import objective, points, schema as trial_schema
from search.spec.job import TrialJob
from search.spec.params import STRICT, ChoiceParam, FloatParam, IntParam, Param, parse_space
from search.spec.problems import (Problem, Problems, SpecError, join_loc, problems_from,
                                  show)
from search.spec.redact import spec_at_rest
from search.spec.schedulers import DEFAULT, SCHEDULERS, Scheduler
from search.spec.warm import WarmStart, point_problems
from search.spec.yaml_io import load_yaml

__all__ = ["SearchSpec", "Param", "FloatParam", "IntParam", "ChoiceParam", "load_spec",
           "parse_spec", "SpecError"]


def _data_field(f: dataclasses.Field) -> tuple[Any, Any]:
    knob = knob_of(f)
    base, optional = trial_schema.field_type(DataConfig, f.name)
    annotation: Any = Optional[base] if optional else base
    if knob.choices is not None:
        # Choices stay lazy: the registries import torch, and are read only when validating.
        annotation = Annotated[annotation, AfterValidator(functools.partial(_must_be_valid,
                                                                             f.name))]
    return annotation, Field(f.default, description=knob.doc,
                             **trial_schema.bounds(f.name, DataConfig))


def _must_be_valid(name: str, value: Any) -> Any:
    reason = trial_schema.check_value(name, value, DataConfig)
    if reason:
        raise ValueError(reason)
    return value


# The `data` section: DataConfig's fields, types, bounds, choices and defaults. A module
# attribute, so that pickle finds the class by name.
DataSpec = create_model(
    "DataSpec", __config__=ConfigDict(extra="forbid", strict=True, allow_inf_nan=False),
    __doc__=DataConfig.__doc__,
    **{f.name: _data_field(f) for f in dataclasses.fields(DataConfig)})
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]")


def rule(problem: Callable[[Any], Optional[str]]) -> Callable[[Any, Any], Any]:
    """A pydantic validator from a pure rule that returns why a value is invalid, or None."""

    def check(cls: Any, value: Any) -> Any:
        reason = problem(value)
        if reason:
            raise ValueError(reason)
        return value

    return classmethod(check)


def experiment_name_problem(name: str) -> Optional[str]:
    """The name becomes a directory under storage_path and an MLflow experiment."""
    control = [c for c in name if unicodedata.category(c) == "Cc"]
    if control:
        return f"name is {name!r} but must not contain control characters (found {control[0]!r})"
    if "/" in name or "\\" in name:
        return f"name is {name!r} but must not contain '/' or '\\' (it names a directory)"
    if ".." in name:
        return f"name is {name!r} but must not contain '..' (it names a directory)"
    if not 1 <= len(name) <= 100:
        return f"name is {show(name)} ({len(name)} characters) but must be 1 to 100 characters"
    bad = sorted({c for c in name if not _NAME_CHARS.fullmatch(c)})
    if bad:
        return (f"name is {name!r} but may only use letters, digits, '.', '_' and '-' "
                f"(found {''.join(bad)!r})")
    if not name[0].isalnum():
        return f"name is {name!r} but must start with a letter or digit"
    return None


def gpu_problem(gpu: float) -> Optional[str]:
    """Fractions must pack whole trials onto a card: 0.3 leaves 10% idle, 0.34 fits only 2."""
    share = round(1 / gpu) if 0 < gpu < 1 else 0
    if gpu == int(gpu) or (share and 0.99 <= share * gpu <= 1.0):
        return None
    return (f"gpu is {gpu!r} but must be 0, a whole number or 1/k (e.g. 0.5, 0.25)")


def room_problem(trials: int, points: Optional[int], repeat: bool) -> Optional[str]:
    """Why `trials` cannot all differ in a space of `points` distinct configurations (None:
    continuous), or None. Without it, a missing or single-point space would train the same
    configuration `trials` times and call it a search."""
    if repeat or points is None or points >= trials:
        return None
    what = ("no parameter of the space varies, so every trial would train the same config"
            if points == 1 else f"the space has only {points} distinct configurations")
    return (f"budget.trials is {trials} but {what}; lower budget.trials to {points}, widen the "
            "space, or set budget.repeat: true for a repeat study")


def uri_credentials_problem(uri: str) -> Optional[tuple[str, str]]:
    """(redacted uri, message) when the URI carries user info such as user:pass@host."""
    netloc = urlsplit(uri).netloc
    if "@" not in netloc:
        return None
    redacted = uri.replace(netloc, "***@" + netloc.rsplit("@", 1)[1], 1)
    return redacted, (f"mlflow_uri is {redacted!r} but must not hold credentials (user:pass@); "
                      "use MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD env vars")


# A file with one of these endings given without a scheme is meant as a SQLite database.
DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def database_path_problem(uri: str) -> Optional[str]:
    """Why `uri` is a database file given as a path, or None. MLflow reads a plain path (or a
    `file:` URI) as its filesystem store, a directory of files it no longer supports: the launch
    would end in its "maintenance mode" message, exit 1."""
    parts = urlsplit(uri)
    if parts.scheme not in ("", "file") or not parts.path.endswith(DATABASE_SUFFIXES):
        return None
    return (f"mlflow_uri is {uri!r} but a SQLite database needs the sqlite:/// scheme (a plain "
            f"path or file: URI is MLflow's unsupported filesystem store); did you mean "
            f"'sqlite:///{parts.path}'?")


class Objective(BaseModel):
    model_config = STRICT
    metric: Literal[objective.METRICS] = "val_acc"  # type: ignore[valid-type]
    mode: Literal["max", "min"] = "max"

    @property
    def sign(self) -> int:
        """+1 when larger is better (see search.spec.objective)."""
        return objective.sign(self.mode)

    @model_validator(mode="after")
    def _direction_fits_metric(self) -> Objective:
        # Maximising a loss is never intended and would spend the whole budget on the worst nets.
        wanted = objective.natural_mode(self.metric)
        if self.mode != wanted:
            raise Problems([Problem("mode", self.mode, f"mode is {self.mode!r} but "
                                    f"{self.metric} must be {wanted}imised; write mode: {wanted}")])
        return self


class Constraint(BaseModel):
    """A bound a trial must hold to count (`{metric: params, max: 1.0e6}`): Optuna's samplers
    that take constraints learn where the feasible region is, and the Pareto front and the
    winner are chosen among the trials that hold every bound (at their last epoch)."""

    model_config = STRICT
    metric: Literal[objective.METRICS]  # type: ignore[valid-type]
    max: Optional[float] = None
    min: Optional[float] = None

    @model_validator(mode="after")
    def _one_bound(self) -> Constraint:
        if (self.max is None) == (self.min is None):
            given = {k: v for k, v in (("max", self.max), ("min", self.min)) if v is not None}
            raise Problems([Problem("", given, f"constraint on {self.metric} has "
                                    f"{' and '.join(given) or 'no bound'} but needs exactly "
                                    "one of max or min")])
        return self

    def triple(self) -> tuple[str, str, float]:
        side = "max" if self.max is not None else "min"
        return self.metric, side, float(getattr(self, side))


def objectives_problem(items: Any) -> Optional[Problem]:
    """Why a list of objectives (validated one by one) cannot be searched together, or None:
    each names a different metric."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.metric in seen:
            return Problem(f"[{index}].metric", item.metric, f"metric is {item.metric!r} but "
                           f"objective[{seen[item.metric]}] names it already; each objective "
                           "names a different metric")
        seen[item.metric] = index
    return None


class Budget(BaseModel):
    model_config = STRICT
    trials: int = Field(ge=1)
    max_epochs: int = Field(**trial_schema.bounds("epochs"))
    time_limit_s: Optional[float] = Field(None, gt=0)
    # A repeat study trains the same configuration(s) more than once on purpose; otherwise a
    # space with fewer distinct points than trials is refused (see `room_problem`).
    repeat: bool = False


class Resources(BaseModel):
    model_config = STRICT
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)

    _packs_evenly = field_validator("gpu")(rule(gpu_problem))


class TrialSpec(BaseModel):
    model_config = STRICT
    resources: Resources = Field(default_factory=Resources)
    max_concurrent: Optional[int] = Field(None, ge=1)
    max_failures: int = Field(2, ge=0)
    # The search stops when the first N trials to end all failed with the same error (a broken
    # file or environment fails every trial alike); 0 never stops. See search/run/failfast.py.
    abort_on_same_error: int = Field(3, ge=0)


class _Sampler(BaseModel):
    model_config = STRICT
    # Whether it searches several objectives at once (a list `objective`); the others refuse one.
    several_objectives: ClassVar[bool] = False
    # Whether a search by it trains no configuration twice (search.engine.distinct).
    distinct: ClassVar[bool] = True
    seed: Optional[int] = Field(0, ge=0, lt=2**32)  # numpy's seed range
    # How trials that ASHA stopped early reach Optuna: "pruned" keeps TPE from mixing partial
    # and full-budget results; "complete" is stock Ray behaviour.
    stopped_trials: Literal["pruned", "complete"] = "pruned"


class TPE(_Sampler):
    type: Literal["tpe"] = "tpe"
    several_objectives: ClassVar[bool] = True
    n_startup_trials: int = Field(10, ge=0)
    multivariate: bool = True
    constant_liar: bool = True


class GP(_Sampler):
    type: Literal["gp"] = "gp"
    several_objectives: ClassVar[bool] = True
    n_startup_trials: int = Field(10, ge=0)


class CmaEs(_Sampler):
    type: Literal["cmaes"] = "cmaes"
    n_startup_trials: int = Field(1, ge=0)
    sigma0: Optional[float] = Field(None, gt=0)


class RandomSampler(_Sampler):
    type: Literal["random"] = "random"
    several_objectives: ClassVar[bool] = True


class QMC(_Sampler):
    type: Literal["qmc"] = "qmc"
    several_objectives: ClassVar[bool] = True
    qmc_type: Literal["sobol", "halton"] = "sobol"
    scramble: bool = True


class BOHB(_Sampler):
    """BOHB's model (search.engine.rung_sampler): TPE fitted at the highest of the scheduler's
    rungs where at least `min_points` trials have a result (default: parameters + 1), a share
    `random_fraction` of proposals drawn at random. With `scheduler: hyperband` this is BOHB."""

    type: Literal["bohb"] = "bohb"
    several_objectives: ClassVar[bool] = True  # MO-TPE at the rung (search.engine.rung_sampler)
    random_fraction: float = Field(1 / 3, ge=0, le=1)
    min_points: Optional[int] = Field(None, ge=1)
    multivariate: bool = True
    constant_liar: bool = True
    n_ei_candidates: int = Field(24, ge=1)


class DEHBSampler(_Sampler):
    """DEHB (search.engine.dehb): the `dehb` package's differential evolution inside its
    Hyperband brackets, asked for each trial's configuration and epochs. Needs `scheduler:
    {type: dehb}` (its budgets: `min_epochs`, `reduction_factor`). `mutation_factor`,
    `crossover_prob` and `strategy` are DE's, with the package's defaults."""

    type: Literal["dehb"] = "dehb"
    # DEHB promotes a configuration to a larger budget as a new trial: repeats by design.
    distinct: ClassVar[bool] = False
    # Its trials stopped at their budget are told as such: DEHB compares them at that budget.
    stopped_trials: Literal["pruned"] = "pruned"
    mutation_factor: float = Field(0.5, gt=0, le=2)
    crossover_prob: float = Field(0.5, ge=0, le=1)
    strategy: Literal["rand1_bin", "rand2_bin", "rand2dir_bin", "best1_bin", "best2_bin",
                      "currenttobest1_bin", "randtobest1_bin", "rand1_exp", "rand2_exp",
                      "rand2dir_exp", "best1_exp", "best2_exp", "currenttobest1_exp",
                      "randtobest1_exp"] = "rand1_bin"


class NSGA2(_Sampler):
    """Optuna's NSGA-II (Deb et al. 2002): a genetic search for several objectives, its
    population ranked by non-dominated sorting and crowding distance."""

    type: Literal["nsga2"] = "nsga2"
    several_objectives: ClassVar[bool] = True
    population_size: int = Field(50, ge=2)
    crossover_prob: float = Field(0.9, ge=0, le=1)
    swapping_prob: float = Field(0.5, ge=0, le=1)


class NSGA3(NSGA2):
    """Optuna's NSGA-III (Deb & Jain 2014): NSGA-II with reference points in place of the
    crowding distance, for three objectives or more."""

    type: Literal["nsga3"] = "nsga3"  # type: ignore[assignment]


SAMPLER_MODELS = (TPE, GP, CmaEs, RandomSampler, QMC, BOHB, DEHBSampler, NSGA2, NSGA3)
Sampler = Annotated[Union[SAMPLER_MODELS],  # type: ignore[valid-type]
                    Field(discriminator="type")]


class Tracking(BaseModel):
    model_config = STRICT
    mlflow_uri: str = Field("sqlite:///mlflow.db", min_length=1)
    experiment: Optional[str] = Field(None, min_length=1)  # None -> the spec's name

    @field_validator("mlflow_uri")
    @classmethod
    def _no_credentials(cls, uri: str) -> str:
        found = uri_credentials_problem(uri)
        if found:
            redacted, reason = found  # the secret must not reach logs through the error
            raise Problems([Problem("", redacted, reason)])
        return uri

    _database_path = field_validator("mlflow_uri")(rule(database_path_problem))


def _one_or_a_list(schema: dict) -> None:
    """The JSON Schema of `objective` as a user writes it: a mapping, or a list of them."""
    items = schema.pop("items")
    schema["anyOf"] = [items, {"type": "array", "items": items,
                               "minItems": schema.pop("minItems", 1)}]
    schema.pop("type", None)


def several_sampler(scheduler: str, max_epochs: int) -> str:
    """The sampler of a search of several objectives that names none (pure), chosen by replay
    (bench/README.md, several objectives): `bohb`, MO-TPE fitted at the scheduler's highest
    rung with enough results (search.engine.rung_sampler), where the scheduler compares trials
    before their full budget: it learns from the trials MO-ASHA paused or stopped, which plain
    MO-TPE never sees. With one result per trial (`max_epochs` 1, or `fifo`) there is no rung
    to learn from and `bohb` is MO-TPE with a third of its proposals random: `tpe` then."""
    return "tpe" if scheduler == "fifo" or max_epochs <= 1 else "bohb"


def searchable_by(sampler: Any, scheduler: Any, count: int) -> list[Problem]:
    """What refuses a search of `count` objectives by `sampler` and `scheduler` (validated
    sections): each that ranks one value, with those that take several; [] for one objective."""
    if count < 2:
        return []
    problems = []
    if not sampler.several_objectives:
        problems.append(Problem("sampler.type", sampler.type, f"sampler is {sampler.type!r} but "
                                f"the objective has {count} metrics; samplers for several "
                                f"objectives: {', '.join(several_objective_samplers())}"))
    if not scheduler.several_objectives:
        problems.append(Problem("scheduler.type", scheduler.type, f"scheduler is "
                                f"{scheduler.type!r} but the objective has {count} metrics; "
                                "schedulers for several objectives: "
                                f"{', '.join(several_objective_schedulers())}"))
    return problems


class SearchSpec(BaseModel):
    model_config = STRICT
    name: str
    data: DataSpec  # type: ignore[valid-type]
    # `objective:` a mapping (one objective) or a list of them, the first the primary one;
    # read through the `objective` (primary) and `objectives` properties.
    objectives_: list[Objective] = Field(default_factory=lambda: [Objective()],
                                         alias="objective", min_length=1,
                                         json_schema_extra=_one_or_a_list)
    constraints: list[Constraint] = Field(default_factory=list)
    budget: Budget
    trial: TrialSpec = Field(default_factory=TrialSpec)
    sampler: Sampler = Field(default_factory=TPE)
    scheduler: Scheduler = Field(default_factory=DEFAULT)
    fixed: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, Param] = Field(default_factory=dict)
    tracking: Tracking = Field(default_factory=Tracking)
    storage_path: str = Field("runs", min_length=1)
    # What the search learns from before its first proposal (search/spec/warm.py); None: cold.
    warm_start: Optional[WarmStart] = None
    _source: str = PrivateAttr("<spec>")
    _base_dir: str = PrivateAttr("")
    # Fields a command-line flag gave ({"warm_start.from[1]": "--warm-from"}): checks made
    # after parsing (the warm start's sources) name the flag, as parsing's do.
    _flags: dict = PrivateAttr(default_factory=dict)

    _safe_name = field_validator("name")(rule(experiment_name_problem))

    @model_validator(mode="before")
    @classmethod
    def _default_sampler(cls, raw: Any) -> Any:
        """The sampler a spec that names none gets: TPE for one objective, `several_sampler`'s
        for several. What does not parse here is left to validation, which names it."""
        if isinstance(raw, dict) and raw.get("sampler") is None \
                and isinstance(raw.get("objective"), list) and len(raw["objective"]) > 1:
            scheduler, budget = raw.get("scheduler"), raw.get("budget")
            default = DEFAULT.model_fields["type"].default
            kind = scheduler.get("type", default) if isinstance(scheduler, dict) else default
            epochs = budget.get("max_epochs") if isinstance(budget, dict) else None
            epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else 2
            return {**raw, "sampler": {"type": several_sampler(kind, epochs)}}
        return raw

    @field_validator("objectives_", mode="before")
    @classmethod
    def _one_or_several(cls, value: Any) -> Any:
        if isinstance(value, list):
            return value
        if not isinstance(value, dict):
            raise Problems([Problem("", value, f"objective is {show(value)} but must be a "
                                    "mapping {metric, mode} or a list of them")])
        try:  # one objective: its problems are named `objective.metric`, not `objective[0]...`
            return [Objective.model_validate(value)]
        except ValidationError as err:
            raise Problems(problems_from(err, Objective)) from None

    @field_validator("objectives_")
    @classmethod
    def _different_metrics(cls, value: list) -> list:
        found = objectives_problem(value)
        if found is not None:
            raise Problems([found])
        return value

    @property
    def objective(self) -> Objective:
        """The primary objective: the only one, or the first of several."""
        return self.objectives_[0]

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return tuple(self.objectives_)

    @property
    def objective_pairs(self) -> tuple[tuple[str, str], ...]:
        """(metric, mode) of each objective when there are several (what the searcher, the
        scheduler and the trial job rank by); () for one."""
        if len(self.objectives_) < 2:
            return ()
        return tuple((o.metric, o.mode) for o in self.objectives_)

    @model_validator(mode="after")
    def _several_objectives_searchable(self) -> SearchSpec:
        if len(self.objectives_) < 2:
            return self
        problems = searchable_by(self.sampler, self.scheduler, len(self.objectives_))
        if self.warm_start is not None:
            problems.append(Problem("warm_start", "...", "a warm start tells the search an "
                                    "earlier search's values of one objective; it cannot warm "
                                    "a search of several yet: remove warm_start"))
        if problems:
            raise Problems(problems)
        return self

    @field_validator("scheduler")
    @classmethod
    def _scheduler_fits_budget(cls, scheduler: Any, info: ValidationInfo) -> Any:
        return scheduler.within(info.data.get("budget"))

    @field_validator("fixed", mode="before")
    @classmethod
    def _fixed_fields(cls, fixed: Any) -> Any:
        if fixed is None:  # an empty `fixed:` section
            return {}
        if not isinstance(fixed, dict):
            return fixed
        problems = [Problem(str(k), k, trial_schema.unknown_field(k)) for k in fixed
                    if not isinstance(k, str) or k not in trial_schema.searchable()]
        problems += [Problem(k, v, reason) for k, v in fixed.items()
                     if k in trial_schema.searchable()
                     and (reason := trial_schema.check_value(k, v)) is not None]
        if problems:
            raise Problems(problems)
        return {k: _plain(trial_schema.coerce(k, v)) for k, v in fixed.items()}

    @field_validator("space", mode="before")
    @classmethod
    def _space_params(cls, space: Any, info: ValidationInfo) -> Any:
        return {} if space is None else parse_space(space, info.data.get("fixed") or {})

    @model_validator(mode="after")
    def _enough_trials_out(self) -> SearchSpec:
        wanted, needed = self.trial.max_concurrent, self.scheduler.trials_out(
            self.budget.max_epochs, 1)
        if wanted is not None and wanted < needed:
            raise Problems([Problem(
                "trial.max_concurrent", wanted, f"max_concurrent is {wanted} but scheduler "
                f"{self.scheduler.type} needs {needed} trials out at once at max_epochs "
                f"{self.budget.max_epochs} to fill its brackets (a waiting or paused trial "
                "uses no resources); raise it or leave it unset")])
        return self

    @model_validator(mode="after")
    def _dehb_in_pairs(self) -> SearchSpec:
        found = dehb_pair_problem(self.sampler.type, self.scheduler.type)
        if found is not None:
            raise Problems([found])
        return self

    @model_validator(mode="after")
    def _room_for_the_trials(self) -> SearchSpec:
        reason = room_problem(self.budget.trials, points.distinct_points(self.space),
                              self.budget.repeat)
        if reason:
            raise Problems([Problem("budget.trials", self.budget.trials, reason)])
        return self

    @model_validator(mode="after")
    def _queued_points_fit(self) -> SearchSpec:
        if self.warm_start is None:
            return self
        problems = [Problem(join_loc("warm_start.enqueue", i, p.loc), p.value, p.message)
                    for i, point in enumerate(self.warm_start.enqueue)
                    for p in point_problems(self.space, point)]
        if problems:
            raise Problems(problems)
        return self

    def job(self, data: Optional[DataConfig] = None) -> TrialJob:
        """What every trial of this search shares, as plain data (workers need no Pydantic).
        `data` replaces the spec's data config (the launch passes one with its root located)."""
        return TrialJob(fixed=dict(self.fixed), max_epochs=self.budget.max_epochs,
                        metric=self.objective.metric, mode=self.objective.mode,
                        data=data or self.data_config(),
                        objectives=self.objective_pairs,
                        constraints=tuple(c.triple() for c in self.constraints))

    def data_config(self) -> DataConfig:
        return DataConfig(**self.data.model_dump())

    def with_overrides(self, *, trials: Optional[int] = None, max_epochs: Optional[int] = None,
                       seed: Optional[int] = None) -> SearchSpec:
        """A re-validated copy; `seed` sets the sampler's seed and the trials' seed."""
        raw = self.model_dump(by_alias=True)
        return parse_spec(apply_overrides(raw, trials, max_epochs, seed), self._source,
                          base_dir=self.base_dir).flagged(self._flags)

    def renamed(self, name: str) -> SearchSpec:
        """A re-validated copy under another experiment name (`--name`)."""
        return parse_spec({**self.resolved(), "name": name}, f"{self._source} (--name)",
                          base_dir=self.base_dir).flagged(self._flags)

    def flagged(self, flags: dict[str, str]) -> SearchSpec:
        self._flags = dict(flags)
        return self

    def flag_of(self, loc: str) -> str:
        """The flag that gave the field at `loc`, or ''."""
        return self._flags.get(loc, "")

    def resolved(self) -> dict:
        """The full spec with defaults filled, JSON-safe (for MLflow and printing). A cold
        search has no `warm_start` key: its hash is the one it had before the section existed."""
        dumped = self.model_dump(mode="json", by_alias=True, exclude_none=False)
        # One objective is written as the mapping it was before lists existed, and a search
        # without constraints has no key: a single-objective search keeps its hash.
        if len(dumped["objective"]) == 1:
            dumped["objective"] = dumped["objective"][0]
        if not dumped.get("constraints"):
            dumped.pop("constraints", None)
        else:
            dumped["constraints"] = [{k: v for k, v in c.items() if v is not None}
                                     for c in dumped["constraints"]]
        if dumped.get("warm_start") is None:
            dumped.pop("warm_start", None)
        else:
            # a warm start that does not narrow (or queue its sources' best) hashes as it did
            # before those fields existed
            for later in ("narrow", "queue_best"):
                if dumped["warm_start"].get(later) is None:
                    dumped["warm_start"].pop(later, None)
        return dumped

    def spec_hash(self) -> str:
        """The search as it is kept at rest: a tracking URI's secret (masked in the record) is
        not part of it, so a rotated password is no change of the search."""
        canonical = json.dumps(spec_at_rest(self.resolved()), sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def source(self) -> str:
        return self._source

    def located(self, source: str, base_dir: Path) -> SearchSpec:
        """This spec, noting where it came from (messages) and what its paths are relative to."""
        self._source = source
        self._base_dir = str(base_dir.resolve())
        return self

    @property
    def base_dir(self) -> Path:
        """What relative paths in the spec (storage_path, a SQLite tracking file, data.root) are
        relative to: the spec file's own directory, so that an experiment is the same whichever
        directory it is launched from (a spec built in code: the directory it was parsed in)."""
        return Path(self._base_dir or os.getcwd())


def several_objective_samplers() -> list[str]:
    return [m.model_fields["type"].default for m in SAMPLER_MODELS if m.several_objectives]


def several_objective_schedulers() -> list[str]:
    return [t for t, entry in SCHEDULERS.items() if entry.several_objectives]


def dehb_pair_problem(sampler: str, scheduler: str) -> Optional[Problem]:
    """DEHB is one algorithm in two sections: its sampler decides each trial's epochs and only
    its scheduler stops trials there; either without the other would not be DEHB."""
    if sampler == "dehb" and scheduler != "dehb":
        return Problem("scheduler.type", scheduler, f"scheduler is {scheduler!r} but sampler "
                       "dehb decides each trial's epochs itself; write scheduler: {type: dehb}")
    if scheduler == "dehb" and sampler != "dehb":
        return Problem("sampler.type", sampler, f"sampler is {sampler!r} but scheduler dehb "
                       "only stops trials at the epochs DEHB's sampler gave them; write "
                       "sampler: {type: dehb}")
    return None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def apply_overrides(raw: dict, trials: Optional[int], max_epochs: Optional[int],
                    seed: Optional[int], warm_from: Optional[list[str]] = None) -> dict:
    """Command-line overrides written into a raw spec mapping (validated afterwards)."""
    raw = dict(raw)

    def section(key: str, default: dict) -> dict:
        value = raw.get(key)
        if value is None or isinstance(value, dict):
            value = dict(default if value is None else value)
        raw[key] = value
        return value if isinstance(value, dict) else {}

    if trials is not None:
        section("budget", {})["trials"] = trials
    if max_epochs is not None:
        section("budget", {})["max_epochs"] = max_epochs
    if seed is not None:
        section("sampler", {"type": "tpe"})["seed"] = seed
        section("fixed", {})["seed"] = seed
    if warm_from:  # added to the file's sources, after them
        warm = section("warm_start", {})
        earlier = warm.get("from")
        warm["from"] = [*(earlier if isinstance(earlier, list) else []), *warm_from]
    return raw


def parse_spec(mapping: Any, source: str = "<spec>",
               base_dir: Optional[str | PathLike] = None) -> SearchSpec:
    """Validate a parsed mapping; raises SpecError with every problem found. Relative paths in
    it will be resolved against `base_dir` (default: the current directory, now)."""
    if not isinstance(mapping, dict):
        raise SpecError.one("", mapping, f"the spec is {show(mapping)} but must be a mapping of "
                            "sections (name, data, budget, ...)", source)
    try:
        spec = SearchSpec.model_validate(mapping)
    except ValidationError as err:
        raise SpecError(problems_from(err, SearchSpec), source) from None
    return spec.located(source, Path(base_dir if base_dir is not None else os.getcwd()))


# The fields each override of load_spec writes, and the flag that gives it on the command line
# (`retrain` calls its max_epochs `--epochs`): a bad value there is the flag's, not the file's.
OVERRIDDEN = {"trials": ("budget.trials",), "max_epochs": ("budget.max_epochs",),
              "seed": ("sampler.seed", "fixed.seed")}
FLAGS = {"trials": "--trials", "max_epochs": "--max-epochs", "seed": "--seed",
         "warm_from": "--warm-from"}


def load_spec(path: str | PathLike, *, trials: Optional[int] = None,
              max_epochs: Optional[int] = None, seed: Optional[int] = None,
              relative_to: Optional[str | PathLike] = None,
              flags: Optional[dict[str, str]] = None,
              warm_from: Optional[list[str]] = None) -> SearchSpec:
    """Read, strictly parse and validate a spec file, with command-line overrides applied.
    Its relative paths are relative to its own directory, or to `relative_to` (a submitted
    job's copy of a spec keeps meaning what the original meant). A problem with an overridden
    field names the flag (`flags` renames FLAGS' entries)."""
    raw = apply_overrides(load_yaml(path), trials, max_epochs, seed, warm_from)
    base = Path(relative_to) if relative_to is not None else Path(path).resolve().parent
    try:
        return parse_spec(raw, str(path), base_dir=base).flagged(from_flag(raw, warm_from))
    except SpecError as error:
        given = {"trials": trials, "max_epochs": max_epochs, "seed": seed}
        named = {**FLAGS, **(flags or {})}
        by_loc = {loc: named[key] for key, value in given.items() if value is not None
                  for loc in OVERRIDDEN[key]}
        flagged = from_flag(raw, warm_from)
        for problem in error.problems:
            problem.flag = by_loc.get(problem.loc, flagged.get(problem.loc, problem.flag))
        raise SpecError(error.problems, error.source) from None


def from_flag(raw: dict, warm_from: Optional[list[str]]) -> dict[str, str]:
    """{'warm_start.from[i]': '--warm-from'} for the sources the flag added (after the file's)."""
    if not warm_from:
        return {}
    warm = raw.get("warm_start")
    sources = warm.get("from") if isinstance(warm, dict) else None
    if not isinstance(sources, list):
        return {}
    total = len(sources)
    return {join_loc("warm_start.from", i): FLAGS["warm_from"]
            for i in range(total - len(warm_from), total)}
