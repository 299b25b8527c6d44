"""Which way is better: the one place the objective's direction (`mode: max|min`) turns into code.

Everything that ranks, compares or fills in a value for a trial that produced none goes through
these functions; nothing else branches on the mode.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

MODES = ("max", "min")


def sign(mode: str) -> int:
    """+1 when larger is better, -1 when smaller is."""
    if mode not in MODES:
        raise ValueError(f"mode is {mode!r} but must be one of {MODES}")
    return 1 if mode == "max" else -1


def natural_mode(metric: str) -> str:
    """The direction a metric is optimised in: a loss down, an accuracy up."""
    return "min" if metric.endswith("_loss") else "max"


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
