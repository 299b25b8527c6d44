"""Which trial of a search of several objectives is the winner: a rule the user states, or the
knee of the Pareto front (pure; table tests in tests/search/winner/test_pick.py).

    --pick "max val_acc where params < 1e6 and latency_ms <= 2.5"
    --pick "min params where val_acc >= 0.9"

A rule is a goal (`max` or `min` of one metric) and, after `where`, conditions joined by `and`,
each `METRIC OP NUMBER` with OP one of < <= > >=. Among the candidates (the trials on the
front, by their values at their last epoch) those meeting every condition are kept and the
best by the goal wins; ties go to the one listed first.

Without a rule the winner is the front's knee: each objective scaled to [0, 1] over the front
(0 the best value on the front, 1 the worst), the trial closest (Euclidean) to the ideal point
where every scaled objective is 0, the one that gives up least of each. A front of one trial is
its own knee.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from search.spec import objective

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
GRAMMAR = ('"max|min METRIC [where METRIC OP NUMBER [and ...]]", OP one of < <= > >=, e.g. '
           '"max val_acc where params < 1e6"')
KNEE = "the knee of the Pareto front"
_CONDITION = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Rule:
    mode: str  # max or min
    metric: str
    where: tuple[tuple[str, str, float], ...] = ()  # (metric, op, number)

    def __str__(self) -> str:
        text = f"{self.mode} {self.metric}"
        if self.where:
            text += " where " + " and ".join(f"{m} {op} {v:g}" for m, op, v in self.where)
        return text


def parse(text: str, metrics: Sequence[str] = objective.METRICS) -> Rule:
    """The rule `text` states; ValueError naming the part that breaks the grammar."""
    head, _, conditions = text.strip().partition(" where ")
    words = head.split()
    if len(words) != 2 or words[0] not in ("max", "min"):
        raise ValueError(f"--pick is {text!r} but must read {GRAMMAR}")
    mode, metric = words
    _known(metric, metrics, text)
    where = []
    for part in (conditions.split(" and ") if conditions.strip() else []):
        found = _CONDITION.match(part)
        if found is None:
            raise ValueError(f"--pick is {text!r}: the condition {part.strip()!r} is not "
                             f"METRIC OP NUMBER (OP one of < <= > >=)")
        name, op, number = found.groups()
        _known(name, metrics, text)
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"--pick is {text!r}: {number!r} in {part.strip()!r} is not a "
                             "number") from None
        where.append((name, op, value))
    return Rule(mode, metric, tuple(where))


def _known(metric: str, metrics: Sequence[str], text: str) -> None:
    if metric not in metrics:
        from search.spec.problems import suggest

        raise ValueError(f"--pick is {text!r}: {metric!r} is no metric a trial reports"
                         + suggest(metric, metrics, "metrics"))


def by_rule(candidates: Mapping[str, Mapping[str, Optional[float]]], rule: Rule
            ) -> Optional[str]:
    """The candidate the rule picks, or None when none meets its conditions."""
    kept = [t for t, values in candidates.items()
            if all(objective.finite(values.get(m)) and OPS[op](values[m], bound)
                   for m, op, bound in rule.where)
            and objective.finite(values.get(rule.metric))]
    if not kept:
        return None
    return min(kept, key=lambda t: objective.rank_key(candidates[t][rule.metric], rule.mode))


def knee(candidates: Mapping[str, Mapping[str, Optional[float]]],
         objectives: Sequence[tuple[str, str]]) -> Optional[str]:
    """The front's knee (see the module's docstring), or None without a candidate."""
    ids = [t for t, values in candidates.items()
           if all(objective.finite(values.get(m)) for m, _ in objectives)]
    if not ids:
        return None
    scaled = {t: [] for t in ids}
    for metric, mode in objectives:
        values = {t: objective.sign(mode) * float(candidates[t][metric]) for t in ids}
        best, worst = max(values.values()), min(values.values())
        for t in ids:
            scaled[t].append(0.0 if best == worst else (best - values[t]) / (best - worst))
    return min(ids, key=lambda t: math.hypot(*scaled[t]))
