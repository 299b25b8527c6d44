"""Which way is better: the one place the objective's direction (`mode: max|min`) turns into code.

Everything that ranks, compares or fills in a value for a trial that produced none goes through
these functions; nothing else branches on the mode.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

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
