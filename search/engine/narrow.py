"""Narrowing a new search's space to where earlier searches did best (`warm_start.narrow: N`):
per parameter, the bounding box of the N best trials of each earlier experiment, as Syne Tune's
transfer-learning `BoundingBox` scheduler does (Perrone et al., "Learning search spaces for
Bayesian optimization", NeurIPS 2019). Across datasets (digits to CIFAR, CIFAR-10 to CIFAR-100)
the best values move, but rarely out of the region the best earlier trials span.

The rule (`box`, pure):
- a number: [min, max] of the best trials' values, each clipped into the declared range first
  (and onto its step's grid); the declared scale (log, int, step) and `when:` stay;
- a choice: the declared choices the best trials used, in the declared order;
- a parameter none of them had (the earlier space lacked it, or its `when:` never held there)
  keeps its declared range; a value the declared space cannot offer counts for nothing.
Configurations queued with `enqueue` are trained as written, so the box takes them in too.
Only parameters both spaces share narrow; the new space's are never added nor removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from search.spec.params import describe


@dataclass(frozen=True)
class Bound:
    """One parameter: as declared, as narrowed, and how many points (best trials and queued
    configurations) had it."""

    declared: Any
    narrowed: Any
    on: int

    def line(self, name: str) -> str:
        """'lr: float [0.001, 0.5] log -> float [0.01, 0.1] log (on 4)'."""
        if self.on == 0:
            return f"{name}: {describe(self.declared)} (kept: no best trial had it)"
        return f"{name}: {describe(self.declared)} -> {describe(self.narrowed)} (on {self.on})"


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def bound(param: Any, values: list[Any]) -> Bound:
    """One parameter's box over the values the best points gave it (pure; see the rules)."""
    from search.engine.warm import clip

    if param.kind == "choice":
        declared = list(param.choices)
        used = [c for c in declared if any(c == v and isinstance(c, bool) == isinstance(v, bool)
                                           for v in values)]
        if not used:
            return Bound(param, param, 0)
        return Bound(param, param.model_copy(update={"choices": used}), len(
            [v for v in values if v in used]))
    numbers = [clip(param, v) for v in values if _number(v)]
    if not numbers:
        return Bound(param, param, 0)
    return Bound(param, param.model_copy(update={"bounds": (min(numbers), max(numbers))}),
                 len(numbers))


def box(space: Mapping[str, Any], points: list[Mapping[str, Any]]) -> dict[str, Bound]:
    """Every parameter of `space` bounded by the `points` (earlier trials' params, queued
    configurations) that have it."""
    return {name: bound(param, [p[name] for p in points if name in p])
            for name, param in space.items()}


def narrowed_space(bounds: Mapping[str, Bound]) -> dict[str, Any]:
    return {name: b.narrowed for name, b in bounds.items()}


@dataclass
class Narrowing:
    """What `warm_start.narrow` made of the space, and the lines `validate` and launch print."""

    top: int
    trials: int  # best trials the box rests on, all experiments together
    queued: int
    bounds: dict[str, Bound]

    @property
    def space(self) -> dict[str, Any]:
        return narrowed_space(self.bounds)

    def summary(self) -> str:
        """The part of the warm start's one line: 'space narrowed to the 2 best of each: lr,
        block' (the parameters whose range or choices shrank)."""
        shrunk = [name for name, b in self.bounds.items() if b.narrowed != b.declared]
        return (f"space narrowed to the {self.top} best of each: "
                + (", ".join(shrunk) if shrunk else "no parameter shrank"))

    def lines(self) -> list[str]:
        head = (f"warm start: space narrowed to the bounding box of the {self.top} best "
                f"trial{'s' if self.top != 1 else ''} of each earlier experiment "
                f"({self.trials} trial{'s' if self.trials != 1 else ''}"
                + (f" and {self.queued} queued configuration{'s' if self.queued != 1 else ''}"
                   if self.queued else "") + "):")
        return [head, *(f"  {b.line(name)}" for name, b in self.bounds.items())]

    def record(self) -> dict:
        """What the experiment record and the MLflow parent keep of it."""
        return {"top": self.top, "trials": self.trials, "queued": self.queued,
                "params": {name: {"declared": describe(b.declared),
                                  "narrowed": describe(b.narrowed), "on": b.on}
                           for name, b in self.bounds.items()}}


def best_params(trials: list[Any], top: int) -> list[dict[str, Any]]:
    """The params of the `top` best of one experiment's trials (`Results.trials`, best first)
    that ended as a searcher is told (completed or stopped) with a finite value."""
    from search.engine.study import state_of
    from search.engine.warm import TOLD

    best = [t for t in trials if state_of(t.outcome, t.status) in TOLD
            and t.best is not None and math.isfinite(t.best)]
    return [dict(t.params) for t in best[:top]]


def narrowing(space: Mapping[str, Any], metric: str, mode: str, earlier: list[Any], top: int,
              enqueue: Optional[list[dict]] = None) -> Narrowing:
    """The box of the `top` best trials of each earlier experiment that optimised the same
    objective (another objective's best would be best at something else) and the queue."""
    points: list[dict[str, Any]] = []
    for one in earlier:
        if (one.results.metric, one.results.mode) == (metric, mode):
            points += best_params(one.results.trials, top)
    queued = [dict(p) for p in enqueue or []]
    return Narrowing(top, len(points), len(queued), box(space, points + queued))
