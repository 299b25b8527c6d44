"""The configurations a space can produce: its parameters in dependency order, which of them
exist for given parent values, how many distinct points it has, and a small set of points in
which every parameter takes each of its choices and both ends of its range.

Pure: `validate` counts points without any engine, and the pre-flight pushes the covering
points through Optuna to the trainer's config (search/run/preflight.py).
"""

from __future__ import annotations

import math
from graphlib import TopologicalSorter
from typing import Any, Iterator, Mapping, Optional

# What a choice can hold and Optuna can store as-is; other values (lists) go by position.
SCALARS = (type(None), bool, int, float, str)


def order(space: Mapping[str, Any]) -> list[str]:
    """Parameter names with every `when:` parent before its children (the spec forbids cycles)."""
    graph = {name: set(param.when) & set(space) for name, param in space.items()}
    return list(TopologicalSorter(graph).static_order())


def active(when: Mapping[str, list], params: Mapping[str, Any]) -> bool:
    """A conditional parameter exists only when every parent took one of the listed values."""
    return all(parent in params and params[parent] in values for parent, values in when.items())


def by_position(param: Any) -> bool:
    """Whether Optuna stores this parameter's value by its position among the choices."""
    return param.kind == "choice" and not all(isinstance(c, SCALARS) for c in param.choices)


def size(param: Any) -> Optional[int]:
    """How many distinct values the parameter can take; None for a continuous range."""
    if param.kind == "choice":
        return len(param.choices)
    if param.low == param.high:  # a range narrowed to one value (search/engine/narrow.py)
        return 1
    if param.kind == "int":
        step = 1 if param.log else param.step  # Optuna ignores the step on a log scale
        return (param.high - param.low) // step + 1
    if param.step is None:
        return None
    return math.floor((param.high - param.low) / param.step + 1e-9) + 1


def distinct_points(space: Mapping[str, Any], cap: int = 10**6) -> Optional[int]:
    """How many distinct configurations the space produces (1 for an empty space); None when
    it has a continuous range. A conditional parameter counts only in the branches where it
    exists. Counting stops at `cap`."""
    if any(size(param) is None for param in space.values()):
        return None
    names = order(space)
    parents = {parent for param in space.values() for parent in param.when}

    def count(index: int, fixed: dict) -> int:
        if index == len(names):
            return 1
        name = names[index]
        param = space[name]
        if not active(param.when, fixed):
            return count(index + 1, fixed)
        if name not in parents:
            return min(cap, size(param) * count(index + 1, fixed))
        total = 0
        for value in param.choices:  # a parent is a choice (the spec checks it)
            total += count(index + 1, {**fixed, name: value})
            if total >= cap:
                return cap
        return total

    return count(0, {})


def extremes(param: Any) -> list:
    """Every choice, or both ends of a range: what a distribution's values are checked at."""
    return list(param.choices) if param.kind == "choice" else [param.low, param.high]


def covering_points(space: Mapping[str, Any]) -> Iterator[tuple[str, Any, dict]]:
    """(name, value, point): for each parameter and each of its extremes, a full point (decoded
    values of every parameter that exists in it) where that parameter exists and takes that
    value. Its parents take the first value that lets it exist; everything else its first."""
    names = order(space)
    for name in names:
        for value in extremes(space[name]):
            wanted = _parents_for(space, name) | {name: value}
            point: dict = {}
            for other in names:
                param = space[other]
                if active(param.when, point):
                    point[other] = wanted.get(other, extremes(param)[0])
            if name in point:  # conditions the spec accepted can always be met
                yield name, value, point


def _parents_for(space: Mapping[str, Any], name: str) -> dict:
    """Values of `name`'s ancestors that make it exist: each parent's first allowed value."""
    found: dict = {}
    for parent, allowed in space[name].when.items():
        if parent in space:
            found |= _parents_for(space, parent) | {parent: allowed[0]}
    return found
