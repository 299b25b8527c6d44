"""Validation derived from `resnet_core.config`: the one schema of what a trial may be.

Pure functions over the dataclasses (no Pydantic): workers build a trial's `TrainConfig` with
them, and the spec's Pydantic models call them as validators.

A value for a field is checked against the field's type annotation and its `Knob` (registry
choices read lazily, numeric bounds), so adding a registry entry or a field never touches this
module. A distribution is valid when every value it can produce is a valid value of its field.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Optional

from resnet_core.config import TrainConfig, knob_of
from search.spec.problems import BOOL_HINT, show, suggest

SET_BY_BUDGET = "epochs"  # the search sets it from budget.max_epochs
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               tuple: "a list of numbers"}
_MAX_ENUMERATED = 10_000  # an int range on a field with choices is expanded to check each value


def fields_of(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def searchable() -> list[str]:
    """TrainConfig fields a spec may fix or search."""
    return [name for name in fields_of(TrainConfig) if name != SET_BY_BUDGET]


@functools.cache
def field_type(cls: type, name: str) -> tuple[type, bool]:
    """(base type, accepts None) from the dataclass annotation: Optional[int] -> (int, True)."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in args if a is not type(None)), type(None) in args
    return typing.get_origin(hint) or hint, False


def type_word(cls: type, name: str) -> str:
    base, optional = field_type(cls, name)
    return _TYPE_WORDS.get(base, base.__name__) + (" or null" if optional else "")


def check_value(name: str, value: Any, cls: type = TrainConfig,
                registries: bool = True) -> Optional[str]:
    """Why `value` is not valid for field `name` of `cls` (type, then knob), or None.
    `registries=False` skips the choices read from resnet_core's registries (they import
    torch): for reading back configs that a worker already accepted."""
    base, optional = field_type(cls, name)
    if value is None:
        return None if optional else f"{name} is None but must be {type_word(cls, name)}"
    wrong = _type_error(name, base, value)
    if wrong:
        return wrong
    knob = knob_of(fields_of(cls)[name])
    if not registries:
        knob = dataclasses.replace(knob, choices=None)
    reason = knob.check(name, value)
    if reason and isinstance(value, str) and knob.choices is not None:
        hint = suggest(value, knob.allowed())
        reason += hint if "did you mean" in hint else ""
    return reason


def _type_error(name: str, base: type, value: Any) -> Optional[str]:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is bool and isinstance(value, str) and value.lower() in _YAML11_BOOLS:
        return f"{name} is {value!r} but must be true or false ({BOOL_HINT})"
    ok = {bool: isinstance(value, bool), str: isinstance(value, str),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: is_number,
          tuple: isinstance(value, (list, tuple)) and all(
              isinstance(v, (int, float)) and not isinstance(v, bool) for v in value),
          }.get(base, isinstance(value, base))
    if not ok:
        return f"{name} is {show(value)} but must be {_TYPE_WORDS.get(base, base.__name__)}"
    numbers = value if base is tuple else [value] if is_number else []
    if any(not math.isfinite(v) for v in numbers):
        return f"{name} is {show(value)} but must be finite (no nan or inf)"
    return None


def coerce(name: str, value: Any, cls: type = TrainConfig) -> Any:
    """A valid value in the field's own type: ints for float fields become floats, lists for
    tuple fields become tuples (so 1 and 1.0 hash and log the same)."""
    base, _ = field_type(cls, name)
    if value is None:
        return None
    if base is float:
        return float(value)
    if base is tuple:
        return tuple(value)
    return value


def check_range(name: str, kind: str, low: float, high: float, step: Any) -> Optional[str]:
    """Why a numeric distribution over [low, high] can produce an invalid `name`, or None.
    Knob bounds are intervals, so checking both ends covers every value in between."""
    base, _ = field_type(TrainConfig, name)
    word = type_word(TrainConfig, name)
    if base not in (int, float):
        article = "an" if kind == "int" else "a"
        return f"{article} {kind} distribution cannot set {name}, which must be {word}; use choice"
    if kind == "float" and base is int:
        return (f"a float distribution cannot set {name}, which must be an integer; "
                "use int: [low, high]")
    knob = knob_of(fields_of(TrainConfig)[name])
    allowed = knob.allowed()
    if allowed is not None:
        if kind == "float" or (high - low) // step > _MAX_ENUMERATED:
            return f"{name} must be one of {allowed}; use choice: [...]"
        bad = [v for v in range(low, high + 1, step) if v not in allowed]
        if bad:
            return (f"the range [{low}, {high}] includes {bad[0]} but {name} must be one of "
                    f"{allowed}; use choice: [...]")
    for end in (low, high):
        reason = knob.check(name, end)
        if reason:
            return f"the range [{low}, {high}] includes {end!r}: {reason}"
    return None


def unknown_field(name: Any) -> str:
    """Message for a key of fixed/space that is not a trainable field."""
    if name == SET_BY_BUDGET:
        return f"{name!r} cannot be fixed or searched; set budget.max_epochs instead"
    return f"unknown training field {name!r}" + suggest(name, searchable(), "valid fields")


def bounds(name: str, cls: type = TrainConfig) -> dict[str, float]:
    """The knob's numeric bounds as pydantic Field arguments (ge/gt/le/lt)."""
    knob = knob_of(fields_of(cls)[name])
    return {k: getattr(knob, k) for k in ("ge", "gt", "le", "lt") if getattr(knob, k) is not None}
