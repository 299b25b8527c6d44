"""What every benchmark problem is made of: its parameters (the domain each one may take), the
rules a `space:` entry must keep to search them, and the evaluator of one task.

A problem brings its own parameters instead of the trainer's schema: a spec's `space:` over
LCBench names `learning_rate` and `max_units`, not `lr` and `width`, and each distribution must
stay inside what the benchmark can answer (a surrogate asked outside its training range answers
anything). `ProblemFields` is the `search.spec.params.Fields` of a problem, so a problem's space is
parsed by the very code that parses a search spec's, with the same (field, value, rule) errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Protocol, Union

from search.replay.predict import Curve
from search.spec.problems import show, suggest


@dataclass(frozen=True)
class Numeric:
    """An int or float parameter over [low, high]; `log` says how the benchmark samples it (the
    published space), not a rule: a spec may search it on either scale."""

    kind: str  # "int" or "float"
    low: float
    high: float
    log: bool = False

    def value_problem(self, name: str, value: Any) -> Optional[str]:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            return f"{name} is {show(value)} but must be an integer"
        if not numeric:
            return f"{name} is {show(value)} but must be a number"
        if not math.isfinite(value):
            return f"{name} is {show(value)} but must be finite (no nan or inf)"
        if not self.low <= value <= self.high:
            return (f"{name} is {value!r} but must be in [{self.low!r}, {self.high!r}] (the "
                    "benchmark's range)")
        return None

    def range_problem(self, name: str, kind: str, low: Any, high: Any) -> Optional[str]:
        if kind == "float" and self.kind == "int":
            return (f"a float distribution cannot set {name}, which must be an integer; "
                    "use int: [low, high]")
        for end in (low, high):
            reason = self.value_problem(name, end)
            if reason:
                return f"the range [{low!r}, {high!r}] includes {end!r}: {reason}"
        return None

    def as_space(self) -> dict:
        """The whole domain as a `space:` entry (the published space)."""
        low, high = (int(self.low), int(self.high)) if self.kind == "int" else (self.low,
                                                                                  self.high)
        return {self.kind: [low, high], **({"log": True} if self.log else {})}


@dataclass(frozen=True)
class Categorical:
    choices: tuple

    def value_problem(self, name: str, value: Any) -> Optional[str]:
        if any(value == c and isinstance(value, bool) == isinstance(c, bool)
               for c in self.choices):
            return None
        hint = suggest(value, self.choices) if isinstance(value, str) else ""
        return (f"{name} is {show(value)} but must be one of {list(self.choices)}"
                + (hint if "did you mean" in hint else ""))

    def range_problem(self, name: str, kind: str, low: Any, high: Any) -> Optional[str]:
        return (f"a{'n' if kind == 'int' else ''} {kind} distribution cannot set {name}, which "
                f"takes one of {list(self.choices)}; use choice: [...]")

    def as_space(self) -> dict:
        return {"choice": list(self.choices)}


Domain = Union[Numeric, Categorical]


class ProblemFields:
    """A problem's parameters as the rules of a `space:` section (search.spec.params.Fields)."""

    def __init__(self, parameters: Mapping[str, Domain], family: str) -> None:
        self.parameters = dict(parameters)
        self.family = family

    def names(self) -> Iterable[str]:
        return self.parameters

    def unknown(self, name: Any) -> str:
        return (f"{name!r} is not a parameter of the {self.family} problem"
                + suggest(name, self.parameters, "its parameters"))

    def value_problem(self, name: str, value: Any) -> Optional[str]:
        return self.parameters[name].value_problem(name, value)

    def range_problem(self, name: str, kind: str, low: Any, high: Any,
                      step: Any) -> Optional[str]:
        return self.parameters[name].range_problem(name, kind, low, high)


class Evaluator(Protocol):
    """One task of a problem: a configuration (every parameter given) -> its curve, epoch 1 to
    max_epochs, and each epoch's duration on the benchmark's clock. A `search.replay.predict`
    Predictor, so the simulator replays it as it replays a recorded table."""

    metric: str
    mode: str
    max_epochs: int

    def __call__(self, params: Mapping[str, Any]) -> Curve: ...


@dataclass(frozen=True)
class Family:
    """A kind of benchmark problem (one module of this package): its parameters with their
    published defaults, its tasks, and an evaluator per task. Each function takes `data`, where
    the family's files are (the vendored surrogate, a recorded table); None where a package
    holds them."""

    name: str
    needs_data: bool
    parameters: Callable[[Optional[Path]], dict[str, Domain]]
    defaults: Callable[[Optional[Path]], dict[str, Any]]
    tasks: Callable[[Optional[Path]], list[str]]
    open: Callable[[str, Optional[Path]], Evaluator]


def sample(parameters: Mapping[str, Domain], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` configurations drawn uniformly from the published space (a log range uniformly
    on the log scale, an int rounded), numpy's generator seeded with `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {}
    for name, domain in parameters.items():
        if isinstance(domain, Categorical):
            columns[name] = [domain.choices[i] for i in rng.integers(len(domain.choices),
                                                                     size=count)]
            continue
        if domain.log:
            drawn = np.exp(rng.uniform(math.log(domain.low), math.log(domain.high), count))
        else:
            drawn = rng.uniform(domain.low, domain.high, count)
        columns[name] = ([int(min(domain.high, max(domain.low, round(v)))) for v in drawn]
                         if domain.kind == "int" else [float(v) for v in drawn])
    return [{name: columns[name][i] for name in parameters} for i in range(count)]
