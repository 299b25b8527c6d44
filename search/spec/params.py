"""The `space` section: one distribution per training field, optionally conditional (`when`).

Every value a distribution can produce must be a valid value of its field (see trial_schema),
and the rules Optuna would only enforce mid-search (log ranges need low > 0, a step must fit
the range, no step on a log range) are checked here, before any trial starts.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Iterable, Optional, Protocol, Union

from pydantic import (BaseModel, ConfigDict, Field, Strict, StrictInt, ValidationError,
                      field_validator)

from search.spec import schema as trial_schema
from search.spec.problems import Problem, Problems, join_loc, problems_from, show, suggest

STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
KINDS = ("float", "int", "choice")


class _Param(BaseModel):
    model_config = STRICT
    kind: ClassVar[str]
    # `when` is declared last in each kind, so dumps read {float: [...], ..., when: {...}}

    # The JSON Schema (search.spec.json_schema) says what a file may hold: one value or a list.
    @field_validator("when", mode="before", check_fields=False,
                     json_schema_input_type=dict[str, Any])
    @classmethod
    def _scalar_to_list(cls, when: Any) -> Any:
        if isinstance(when, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in when.items()}
        return when

    @field_validator("bounds", mode="before", check_fields=False)
    @classmethod
    def _pair(cls, bounds: Any) -> Any:
        if isinstance(bounds, (list, tuple)) and len(bounds) != 2:
            raise ValueError(f"{cls.kind} is {show(bounds)} but must be [low, high]")
        return bounds


class FloatParam(_Param):
    kind: ClassVar[str] = "float"
    bounds: Annotated[tuple[float, float], Strict(False)] = Field(alias="float")
    log: bool = False
    step: Optional[float] = Field(None, gt=0)
    when: dict[str, list[Any]] = Field(default_factory=dict)

    @property
    def low(self) -> float:
        return self.bounds[0]

    @property
    def high(self) -> float:
        return self.bounds[1]


class IntParam(_Param):
    kind: ClassVar[str] = "int"
    bounds: Annotated[tuple[StrictInt, StrictInt], Strict(False)] = Field(alias="int")
    log: bool = False
    step: int = Field(1, ge=1)
    when: dict[str, list[Any]] = Field(default_factory=dict)

    @property
    def low(self) -> int:
        return self.bounds[0]

    @property
    def high(self) -> int:
        return self.bounds[1]


class ChoiceParam(_Param):
    kind: ClassVar[str] = "choice"
    choices: list[Any] = Field(alias="choice")
    when: dict[str, list[Any]] = Field(default_factory=dict)


Param = Union[FloatParam, IntParam, ChoiceParam]
_BY_KIND: dict[str, type[_Param]] = {"float": FloatParam, "int": IntParam, "choice": ChoiceParam}


class Fields(Protocol):
    """What a `space:` section's parameters are checked against: the trainer's schema for a
    search spec, a benchmark problem's own parameters for a replayed one (search.replay)."""

    def names(self) -> Iterable[str]: ...

    def unknown(self, name: Any) -> str: ...  # why `name` is not a parameter

    def value_problem(self, name: str, value: Any) -> Optional[str]: ...

    def range_problem(self, name: str, kind: str, low: Any, high: Any,
                      step: Any) -> Optional[str]: ...


class TrainerFields:
    """The trainer's schema (search.spec.schema, from resnet_core.config)."""

    def names(self) -> Iterable[str]:
        return trial_schema.searchable()

    def unknown(self, name: Any) -> str:
        return trial_schema.unknown_field(name)

    def value_problem(self, name: str, value: Any) -> Optional[str]:
        return trial_schema.check_value(name, value)

    def range_problem(self, name: str, kind: str, low: Any, high: Any,
                      step: Any) -> Optional[str]:
        return trial_schema.check_range(name, kind, low, high, step)


TRAINER = TrainerFields()


def range_problems(kind: str, low: float, high: float, log: bool, step: Any) -> list[Problem]:
    """Rules of a numeric range on its own (locs relative to the parameter)."""
    out = []
    if low >= high:
        out.append(Problem(kind, [low, high], f"the range [{low!r}, {high!r}] has low >= high; "
                           "write [low, high] with low < high"))
    # Optuna's int log scale starts at 1, its float log scale above 0.
    if log and (low < 1 if kind == "int" else low <= 0):
        rule = "low >= 1" if kind == "int" else "low > 0"
        out.append(Problem("log", [low, high], f"log: true needs {rule} but the range "
                           f"[{low!r}, {high!r}] starts at {low!r}"))
    if log and step not in (None, 1):
        out.append(Problem("step", step, f"step {step!r} cannot be combined with log: true "
                           "(Optuna samples a log range without steps)"))
    elif step is not None and low < high and not _fits(high - low, step):
        out.append(Problem("step", step, f"step {step!r} does not divide the range "
                           f"[{low!r}, {high!r}] (high - low = {high - low!r}); change the "
                           "step or move high"))
    return out


def _fits(span: float, step: float) -> bool:
    if isinstance(span, int) and isinstance(step, int):
        return span % step == 0
    ratio = span / step
    return abs(ratio - round(ratio)) <= 1e-9 * max(1.0, ratio)


def choice_problems(choices: list) -> list[Problem]:
    """Rules of a choice list on its own: not empty, plain values, no duplicates."""
    if not choices:
        return [Problem("choice", choices, "choice is [] but must list at least one value")]
    out = []
    for i, value in enumerate(choices):
        loc = join_loc("choice", i)
        if not (_scalar(value) or isinstance(value, list) and all(map(_scalar, value))):
            out.append(Problem(loc, value, f"choice value {show(value)} must be a string, "
                               "number, true/false, null or a list of those"))
        elif any(_same(value, prior) for prior in choices[:i]):
            out.append(Problem(loc, value, f"choice value {show(value)} is listed twice"))
    return out


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def field_problems(name: str, param: _Param, fields: Fields = TRAINER) -> list[Problem]:
    """Every value the distribution can produce must be valid for field `name`."""
    if isinstance(param, ChoiceParam):
        return [Problem(join_loc("choice", i), v, reason) for i, v in enumerate(param.choices)
                if (reason := fields.value_problem(name, v)) is not None]
    reason = fields.range_problem(name, param.kind, param.low, param.high, param.step)
    return [Problem(param.kind, [param.low, param.high], reason)] if reason else []


def when_problems(space: dict[str, _Param], fixed: Any = (), pending: Any = ()) -> list[Problem]:
    """A condition must test a choice parameter of the space for values it can take.
    `pending`: parameters that failed their own checks, so conditions on them are not judged."""
    out = []
    for name, param in space.items():
        for parent, values in param.when.items():
            loc = join_loc(name, "when", parent)
            other = space.get(parent)
            if parent in pending:
                continue
            if parent == name:
                out.append(Problem(loc, parent, f"when: tests {parent!r}, the parameter "
                                   "itself (a cycle)"))
            elif parent in fixed:
                out.append(Problem(loc, parent, f"when: tests {parent!r}, which is fixed, not "
                                   "searched; a condition may only test a choice parameter"))
            elif other is None:
                out.append(Problem(loc, parent, f"when: tests {parent!r}, which is not a "
                                   "parameter in space" + suggest(parent, space, "parameters")))
            elif not isinstance(other, ChoiceParam):
                out.append(Problem(loc, parent, f"when: tests {parent!r}, a {other.kind} "
                                   "parameter; a condition may only test a choice parameter"))
            elif not values:
                out.append(Problem(loc, values, f"when: {parent} is [] but must list at least "
                                   "one value"))
            else:
                out += [Problem(join_loc(loc, i), v, f"when: {parent} is {show(v)}, which "
                                f"{parent} can never take (its choices are {other.choices})")
                        for i, v in enumerate(values)
                        if not any(_same(v, c) for c in other.choices)]
    return out + cycle_problems(space)


def cycle_problems(space: dict[str, _Param]) -> list[Problem]:
    """Conditions must be acyclic: define-by-run sampling draws a parent before its children."""
    out: list[Problem] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for parent in space[name].when:
            if parent == name or parent not in space:
                continue  # reported by when_problems
            if state.get(parent) == "open":
                cycle = path[path.index(parent):] + [parent]
                out.append(Problem(join_loc(cycle[0], "when"), cycle,
                                   f"when: conditions form a cycle: {' -> '.join(cycle)}"))
            elif parent not in state:
                visit(parent, path + [parent])
        state[name] = "done"

    for name in space:
        if name not in state:
            visit(name, [name])
    return out


def parse_param(name: str, raw: Any,
                fields: Fields = TRAINER) -> tuple[Optional[_Param], list[Problem]]:
    """One entry of `space` -> (Param or None, problems with locs relative to `space`)."""
    if isinstance(raw, _Param):  # built in code: checked like any other entry
        raw = raw.model_dump(by_alias=True)
    if not isinstance(raw, dict):
        return None, [Problem(name, raw, f"{name} is {show(raw)} but must be a mapping like "
                              "{float: [low, high]}, {int: [low, high]} or {choice: [...]}; "
                              "put constants under fixed")]
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        return None, [Problem(name, raw, _kind_message(raw, kinds))]
    cls = _BY_KIND[kinds[0]]
    try:
        param = cls.model_validate(raw)
    except ValidationError as err:
        return None, problems_from(err, cls, name)
    if isinstance(param, ChoiceParam):
        own = choice_problems(param.choices)
    else:
        own = range_problems(param.kind, param.low, param.high, param.log, param.step)
    own = own or field_problems(name, param, fields)
    return (None if own else param), [Problem(join_loc(name, p.loc), p.value, p.message)
                                      for p in own]


def _kind_message(raw: dict, kinds: list[str]) -> str:
    if kinds:
        return f"give exactly one of float, int, choice; found {' and '.join(kinds)}"
    unknown = [k for k in raw if k not in ("when", "log", "step")]
    if unknown:
        return f"unknown distribution {unknown[0]!r}; use one of float, int, choice"
    return "missing the distribution; use one of float, int, choice"


def parse_space(raw: Any, fixed: Any = (), fields: Fields = TRAINER) -> Any:
    """Validate a whole `space` mapping against `fields`, collecting every problem (raised as
    Problems)."""
    if not isinstance(raw, dict):
        return raw  # pydantic reports the wrong type
    params, problems = {}, []
    known = set(fields.names())
    for name, entry in raw.items():
        if not isinstance(name, str) or name not in known:
            problems.append(Problem(str(name), name, fields.unknown(name)))
            continue
        if name in fixed:
            problems.append(Problem(name, name, f"{name} is both in fixed and in space; "
                                    "remove one of them"))
        param, found = parse_param(name, entry, fields)
        problems += found
        if param is not None:
            params[name] = param
    problems += when_problems(params, fixed, pending=set(raw) - set(params))
    if problems:
        raise Problems(problems)
    return params


def describe(param: Any) -> str:
    """One line per parameter for `resnet-search validate`."""
    if param.kind == "choice":
        text = "choice " + ", ".join(map(str, param.choices))
    else:
        text = f"{param.kind} [{param.low}, {param.high}]"
        text += " log" if param.log else ""
        text += f" step {param.step}" if param.step not in (None, 1) else ""
    if param.when:
        cond = " and ".join(f"{k} in {v}" if len(v) > 1 else f"{k} = {v[0]}"
                            for k, v in param.when.items())
        text += f"  (only when {cond})"
    return text
