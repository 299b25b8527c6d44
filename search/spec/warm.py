"""The `warm_start` section: what a new search learns from before it proposes anything.

    warm_start:
      from: [runs/digits-a, other.yaml, s3://bucket/runs/digits-b]  # earlier experiments
      top: 16            # the 16 best trials of each (default: all of them)
      enqueue:           # configurations to train first (an article's recipe)
        - {lr: 0.1, optimizer: sgd}
      narrow: 2          # sample only the bounding box of the 2 best trials of each
      queue_best: 1      # train the best completed configuration of each again, first

Only the shape is checked here (the spec needs no storage to validate): whether each `from`
names an experiment with a record is the launch's and `validate`'s check
(search/run/warm.py), and how the earlier trials reach the new searcher is search/engine/warm.py.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from search.spec.points import active, order
from search.spec.problems import Problem, Problems, join_loc, show, suggest


class WarmStart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False,
                              populate_by_name=True)
    # `from` is a Python keyword: the field is `sources`, the YAML key `from`.
    sources: list[str] = Field(default_factory=list, alias="from")
    top: Optional[int] = Field(None, ge=1)
    enqueue: list[dict[str, Any]] = Field(default_factory=list)
    # Narrow the space to the bounding box of the N best trials of each experiment
    # (search/engine/narrow.py); None: sample the space as declared.
    narrow: Optional[int] = Field(None, ge=1)
    # Queue the N best completed configurations of each earlier experiment as this search's
    # first trials (after `enqueue`): their told values were measured on another task, seed or
    # budget, so they are trained again here. On LCBench (bench/warm_start_lcbench.py) it made
    # a warm start from the same task's earlier search reach the cold best early; from other
    # tasks it did not help.
    queue_best: Optional[int] = Field(None, ge=1)

    @field_validator("sources")
    @classmethod
    def _named(cls, sources: list[str]) -> list[str]:
        problems = [Problem(join_loc(i), s, "an experiment must be named (a spec file, an "
                            "experiment directory or an s3:// URI), not an empty string")
                    for i, s in enumerate(sources) if not s.strip()]
        if problems:
            raise Problems(problems)
        return sources

    @model_validator(mode="after")
    def _needs_sources(self) -> "WarmStart":
        if self.sources:
            return self
        problems = [Problem(name, value, f"{name} is {value} but from names no earlier "
                            f"experiment whose best trials could {what}; name one or drop {name}")
                    for name, value, what in (("narrow", self.narrow, "bound the space"),
                                              ("queue_best", self.queue_best, "be queued"))
                    if value is not None]
        if problems:
            raise Problems(problems)
        return self

    @property
    def used(self) -> bool:
        return bool(self.sources or self.enqueue)


def point_problems(space: Mapping[str, Any], point: Mapping[str, Any]) -> list[Problem]:
    """Why `point` (a configuration to queue) is not a point of `space`, one Problem per
    parameter (loc relative to the point): a name the space lacks, a value outside its range
    or choices, a parameter whose `when:` does not hold, an active one missing. A queued
    configuration is trained as written, so nothing is clipped."""
    problems = [Problem(str(name), value, f"{name} is not a parameter of the space"
                        + suggest(name, space, "parameters"))
                for name, value in point.items() if name not in space]
    seen: dict[str, Any] = {}
    for name in order(space):
        param = space[name]
        if not active(param.when, seen):
            if name in point:
                problems.append(Problem(name, point[name], f"{name} does not exist here: its "
                                        f"condition when: {param.when} does not hold"))
            continue
        if name not in point:
            problems.append(Problem(name, None, f"{name} is missing: the space samples it "
                                    "here, so a queued configuration must give it"))
            continue
        value = seen[name] = point[name]
        reason = value_problem(param, value)
        if reason:
            problems.append(Problem(name, value, f"{name} is {show(value)} but {reason}"))
    return problems


def value_problem(param: Any, value: Any) -> Optional[str]:
    """Why `value` is not one the parameter can take, or None (pure; the replay and the
    warm start's clipping agree with it)."""
    if param.kind == "choice":
        return None if value in list(param.choices) else f"must be one of {list(param.choices)}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or (param.kind == "int" and not isinstance(value, int)):
        return f"must be {'an integer' if param.kind == 'int' else 'a number'}"
    if not param.low <= value <= param.high:
        return f"must be within [{param.low}, {param.high}]"
    return None
