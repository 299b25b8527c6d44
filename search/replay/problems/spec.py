"""A problem file: which benchmark problem, where its files are, and the space to search over it,
in the spec's own YAML language (`float`/`int` ranges, `log`, `choice`, `when`), validated
against the problem's parameters instead of the trainer's schema:

    problem: lcbench                 # a family of search.replay.problems.FAMILIES
    data: ../benchmarks/yahpo        # its files, relative to this file (none for nb201)
    fixed: {num_layers: 3}           # optional: parameters held constant
    space:
      learning_rate: {float: [1.0e-4, 0.1], log: true}
      ...

A parameter neither searched nor fixed takes the benchmark's published default. A replayed search
over it is a `ProblemSearch`: the problem's objective and max_epochs, a strategy's `sampler:` and
`scheduler:` sections (the spec's own models: every sampler and scheduler a spec offers), the
validated space; it has the attributes `search.engine.build_searcher`, `build_scheduler` and
`search.replay.simulator` read of a `SearchSpec`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, \
    ValidationInfo, field_validator, model_validator

from search.replay.predict import Curve
from search.replay.problems import FAMILIES
from search.replay.problems.base import Evaluator, Family, ProblemFields
from search.spec.model import Budget, Sampler, Scheduler, searchable_by
from search.spec.params import STRICT, parse_space
from search.spec.problems import Problem, Problems, SpecError, problems_from, show, suggest
from search.spec.yaml_io import load_yaml


class ProblemFile(BaseModel):
    model_config = STRICT
    problem: str
    data: Optional[str] = Field(None, min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, Any] = Field(default_factory=dict)

    @field_validator("problem")
    @classmethod
    def _known_family(cls, name: str) -> str:
        if name not in FAMILIES:
            raise ValueError(f"problem is {name!r} but must be one of {', '.join(FAMILIES)}"
                             + suggest(name, FAMILIES, "problems"))
        return name

    @field_validator("data")
    @classmethod
    def _where(cls, data: Optional[str], info: ValidationInfo) -> Optional[str]:
        base = (info.context or {}).get("base_dir", "")
        if data is not None:
            found = Path(base, data)
            if not found.exists():
                raise ValueError(f"data is {data!r} but {found} does not exist (a relative path "
                                 "is relative to the problem file)")
            return str(found.resolve())
        return None

    @field_validator("fixed", mode="before")
    @classmethod
    def _fixed_values(cls, fixed: Any, info: ValidationInfo) -> Any:
        fields = _fields(info)
        if fields is None or not isinstance(fixed, dict):
            return {} if fixed is None else fixed
        problems = [Problem(str(k), k, fields.unknown(k)) for k in fixed
                    if k not in fields.parameters]
        problems += [Problem(k, v, reason) for k, v in fixed.items() if k in fields.parameters
                     and (reason := fields.value_problem(k, v)) is not None]
        if problems:
            raise Problems(problems)
        return fixed

    @field_validator("space", mode="before")
    @classmethod
    def _space_params(cls, space: Any, info: ValidationInfo) -> Any:
        fields = _fields(info)
        if fields is None:  # the family or its data is wrong: reported on its own
            return {}
        return {} if space is None else parse_space(space, info.data.get("fixed") or {},
                                                    fields=fields)

    @model_validator(mode="after")
    def _every_parameter_has_a_value(self) -> ProblemFile:
        if self.family.needs_data and self.data is None:
            raise Problems([Problem("data", None, f"the {self.problem} problem needs data: "
                                    "(the folder or file that holds it)")])
        missing = [n for n in self.family.parameters(self.data_path)
                   if n not in self.space and n not in self.fixed
                   and n not in self.family.defaults(self.data_path)]
        if missing:
            raise Problems([Problem("space", missing, f"{', '.join(missing)} of the "
                                    f"{self.problem} problem has no published default; search "
                                    "it in space: or set it in fixed:")])
        return self

    @property
    def family(self) -> Family:
        return FAMILIES[self.problem]

    @property
    def data_path(self) -> Optional[Path]:
        return Path(self.data) if self.data else None

    def tasks(self) -> list[str]:
        return self.family.tasks(self.data_path)

    def constants(self) -> dict[str, Any]:
        """What every configuration gets besides its searched parameters."""
        fixed = {**self.family.defaults(self.data_path), **self.fixed}
        return {k: v for k, v in fixed.items() if k not in self.space}

    def open(self, task: str) -> Evaluator:
        """The evaluator of one task, given the searched parameters only."""
        return Bound(self.family.open(task, self.data_path), self.constants())


def _fields(info: ValidationInfo) -> Optional[ProblemFields]:
    data = info.data or {}
    family = FAMILIES.get(data.get("problem", ""))
    if family is None or (family.needs_data and not data.get("data")):
        return None
    where = Path(data["data"]) if data.get("data") else None
    return ProblemFields(family.parameters(where), family.name)


class Bound:
    """A task's evaluator with the problem file's fixed parameters and defaults filled in."""

    def __init__(self, evaluator: Evaluator, constants: Mapping[str, Any]) -> None:
        self.evaluator, self.constants = evaluator, dict(constants)
        self.metric, self.mode = evaluator.metric, evaluator.mode
        self.max_epochs = evaluator.max_epochs

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        return self.evaluator({**self.constants, **params})

    def __getattr__(self, name: str) -> Any:  # the task's own extras (reference, curves...)
        return getattr(self.__dict__["evaluator"], name)


def parse_problem(mapping: Any, source: str = "<problem>",
                  base_dir: Optional[str | os.PathLike] = None) -> ProblemFile:
    """Validate a parsed problem file; SpecError with every problem (field, value, rule)."""
    if not isinstance(mapping, dict):
        raise SpecError.one("", mapping, f"the problem file is {show(mapping)} but must be a "
                            "mapping (problem, data, fixed, space)", source)
    base = str(base_dir if base_dir is not None else os.getcwd())
    try:
        found = ProblemFile.model_validate(mapping, context={"base_dir": base})
    except ValidationError as err:
        raise SpecError(problems_from(err, ProblemFile), source) from None
    return found


def load_problem(path: str | os.PathLike) -> ProblemFile:
    """Read and validate a problem file; relative paths in it are relative to the file."""
    return parse_problem(load_yaml(path), str(path), base_dir=Path(path).resolve().parent)


# --- a search replayed over a problem ---------------------------------------------------------

class Objective(BaseModel):
    model_config = STRICT
    metric: str
    mode: str


class ProblemSearch(BaseModel):
    """What a replayed search over a problem is: the `SearchSpec` attributes the engine and the
    simulator read (objective, budget, sampler, scheduler, space)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False,
                              arbitrary_types_allowed=True)
    objective: Objective
    budget: Budget
    sampler: Sampler
    scheduler: Scheduler
    space: dict[str, Any]
    also: list[Objective] = Field(default_factory=list)  # the other objectives, when several

    @field_validator("scheduler")
    @classmethod
    def _scheduler_fits_budget(cls, scheduler: Any, info: ValidationInfo) -> Any:
        return scheduler.within(info.data.get("budget"))

    @model_validator(mode="after")
    def _several_objectives_searchable(self) -> ProblemSearch:
        problems = searchable_by(self.sampler, self.scheduler, len(self.objectives))
        if problems:
            raise Problems(problems)
        return self

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return (self.objective, *self.also)

    @property
    def objective_pairs(self) -> tuple[tuple[str, str], ...]:
        """As SearchSpec's: (metric, mode) of each objective when there are several, else ()."""
        if not self.also:
            return ()
        return tuple((o.metric, o.mode) for o in self.objectives)

    constraints: ClassVar[tuple] = ()  # a replay constrains nothing


def problem_search(problem: ProblemFile, evaluator: Evaluator, row: Mapping[str, Any],
                   trials: int, seed: int, source: str = "<strategy>",
                   also: Sequence[tuple[str, str]] = ()) -> ProblemSearch:
    """`problem`'s space searched by strategy `row` (its `sampler:` and `scheduler:` sections,
    search.replay.strategies) with at most `trials` trials, the sampler seeded with `seed`;
    `also`: (metric, mode) of the costs it is searched against besides the evaluator's metric."""
    raw = {"objective": {"metric": evaluator.metric, "mode": evaluator.mode},
           "also": [{"metric": metric, "mode": mode} for metric, mode in also],
           "budget": {"trials": trials, "max_epochs": evaluator.max_epochs},
           "sampler": {**row["sampler"], "seed": seed}, "scheduler": dict(row["scheduler"]),
           "space": dict(problem.space)}
    try:
        return ProblemSearch.model_validate(raw)
    except ValidationError as err:
        raise SpecError(problems_from(err, ProblemSearch), source) from None
