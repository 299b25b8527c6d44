"""Which way is better: the one place the objective's direction (`mode: max|min`) turns into code.

Everything that ranks, compares or fills in a value for a trial that produced none goes through
these functions; nothing else branches on the mode. A search has one objective or several (the
spec's `objective` is a mapping or a list); the first is the primary one, which the progress
lines, the learning curves and every single-objective view read. `constraints` bound a metric
from above (`max`) or below (`min`); `violation` is Optuna's convention for them (<= 0 holds).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional

from resnet_core.names import COST_METRICS

MODES = ("max", "min")

# What an objective may name: the trainer's learning metrics, then what a trial costs
# (resnet_core/train/cost.py), which every trial reports from its first epoch on.
LEARNING_METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")
METRICS = LEARNING_METRICS + COST_METRICS


def sign(mode: str) -> int:
    """+1 when larger is better, -1 when smaller is."""
    if mode not in MODES:
        raise ValueError(f"mode is {mode!r} but must be one of {MODES}")
    return 1 if mode == "max" else -1


def natural_mode(metric: str) -> str:
    """The direction a metric is optimised in: a loss and a cost down, an accuracy up."""
    return "min" if metric.endswith("_loss") or metric in COST_METRICS else "max"


def worst(mode: str) -> float:
    """The value of a trial that produced no model: below (or above) every real value."""
    return -sign(mode) * math.inf


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def best(values: Iterable[Any], mode: str) -> Optional[float]:
    """The best finite value, or None when there is none (NaN and inf never win)."""
    kept = [float(v) for v in values if finite(v)]
    return max(kept, key=lambda v: sign(mode) * v) if kept else None


def rank_key(value: Optional[float], mode: str) -> float:
    """Sort key that puts the best value first and a missing or non-finite value last."""
    return -sign(mode) * value if finite(value) else math.inf


def better(a: Optional[float], b: Optional[float], mode: str) -> bool:
    """Whether `a` is strictly better than `b` (a missing value is never better)."""
    return rank_key(a, mode) < rank_key(b, mode)


def primary(spec: Any) -> dict:
    """The primary objective's mapping ({metric, mode}) of a saved resolved spec, {} when it
    has none: its `objective`, or the first of a list."""
    raw = spec.get("objective") or {}
    first = raw[0] if isinstance(raw, list) and raw else raw
    return first if isinstance(first, dict) else {}


def saved_objectives(spec: dict) -> list[tuple[str, str]]:
    """(metric, mode) of every objective of a saved resolved spec (the record's spec.json, an
    MLflow parent's spec), the primary one first: its `objective` is a mapping or a list."""
    raw = spec.get("objective") or {}
    items = raw if isinstance(raw, list) else [raw]
    return [(str(o.get("metric", "val_acc")), str(o.get("mode", "max"))) for o in items
            if isinstance(o, dict)]


def saved_constraints(spec: dict) -> list[tuple[str, str, float]]:
    """(metric, "max" or "min", bound) of every constraint of a saved resolved spec."""
    found = []
    for item in spec.get("constraints") or []:
        side = "max" if item.get("max") is not None else "min"
        found.append((str(item["metric"]), side, float(item[side])))
    return found


def constraint_key(metric: str, side: str, bound: float) -> str:
    """A constraint's name, as Optuna keeps it on a trial: `params<=1000000`."""
    return f"{metric}{'<=' if side == 'max' else '>='}{bound:g}"


def violation(value: Any, side: str, bound: float) -> float:
    """How far `value` is beyond its bound (Optuna's constraint value: <= 0 holds); a missing or
    non-finite value breaks it (inf)."""
    if not finite(value):
        return math.inf
    return float(value) - bound if side == "max" else bound - float(value)


def feasible(result: dict, constraints: Iterable[tuple[str, str, float]]) -> bool:
    """Whether a result (one epoch's report) holds every constraint."""
    return all(violation(result.get(m), side, bound) <= 0 for m, side, bound in constraints)


def point(result: dict, objectives: Iterable[tuple[str, str]]) -> tuple[float, ...]:
    """A result's value of every objective, the worst value where one is missing or not
    finite (a trial that produced no model is dominated by every trial that did)."""
    return tuple(float(result[m]) if finite(result.get(m)) else worst(mode)
                 for m, mode in objectives)


def candidates(lasts: Mapping[str, dict], objectives: Iterable[tuple[str, str]],
               constraints: Iterable[tuple[str, str, float]]) -> dict[str, tuple[float, ...]]:
    """What a Pareto front is chosen from (pure): of the trials that ran their whole budget,
    given as trial id -> last result, those holding every constraint, as their points."""
    objectives, constraints = tuple(objectives), tuple(constraints)
    return {trial_id: point(last, objectives) for trial_id, last in lasts.items()
            if feasible(last, constraints)}
