"""The numbers target 4 of PERFORMANCE.md is judged on, from searches' results in the order the
driver got them (one result = one trial-epoch). Pure functions, shared by the replay
(bench/replay.py) and the real launches (bench/search_efficiency.py), so both are read alike.

- target: the best value random search without early stopping reaches with budget B (its
  `trials` x `max_epochs` epochs), per seed;
- epochs_to_target: epochs a search spent up to and including its first result at least as
  good as the target (None: not reached);
- anytime: the best value after each epoch spent, 1..B;
- medians and interquartile ranges over seeds count "not reached" as worse than any reached
  value; the paired test compares two strategies seed by seed.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Optional, Sequence

from search.spec import objective


def score(value: Any, mode: str) -> float:
    """A result's objective as "higher is better", -inf when it is not a finite number."""
    return objective.sign(mode) * value if objective.finite(value) else -math.inf


def epochs_to_target(values: Iterable[Any], target: float, mode: str) -> Optional[int]:
    """Results (each one epoch, in time order) up to and including the first at least as good
    as `target`; None when none is."""
    goal = score(target, mode)  # -inf when the target is no number: any finite value reaches
    for count, value in enumerate(values, start=1):
        if objective.finite(value) and score(value, mode) >= goal:
            return count
    return None


def best(values: Iterable[Any], mode: str) -> Optional[float]:
    return objective.best(values, mode)


def anytime(values: Sequence[Any], budget: int, mode: str) -> list[Optional[float]]:
    """The best value after 1..budget epochs (the last best carried past the search's end;
    None before the first finite value)."""
    out: list[Optional[float]] = []
    current: Optional[float] = None
    for count in range(budget):
        if count < len(values) and objective.better(values[count], current, mode):
            current = float(values[count])
        out.append(current)
    return out


def seed_figures(values: Sequence[Any], target: float, budget: int, mode: str) -> dict:
    """One strategy's figures for one seed."""
    reached = epochs_to_target(values, target, mode)
    return {"epochs_to_target": reached, "ratio": None if reached is None else reached / budget,
            "best": best(values, mode), "epochs": len(values)}


def quantile(values: Sequence[Optional[float]], q: float,
             missing: float = math.inf) -> Optional[float]:
    """The q-quantile (linear interpolation between the two nearest ranks), a None counted as
    `missing`: +inf where None means "not reached" (worse than any number of epochs), -inf where
    it means "no value yet" on a higher-is-better scale. None when the quantile falls on or next
    to a None."""
    ranked = sorted(missing if v is None else float(v) for v in values)
    if not ranked:
        return None
    position = q * (len(ranked) - 1)
    low, fraction = math.floor(position), position - math.floor(position)
    if fraction == 0:
        found = ranked[low]
    else:
        found = ranked[low] + (ranked[low + 1] - ranked[low]) * fraction
    return found if math.isfinite(found) else None


def spread(values: Sequence[Optional[float]]) -> dict:
    """Median and interquartile range ("not reached" = None counts as the worst)."""
    return {"median": quantile(values, 0.5), "q25": quantile(values, 0.25),
            "q75": quantile(values, 0.75),
            "reached": sum(v is not None for v in values), "of": len(values)}


def median_best(values: Sequence[Optional[float]]) -> Optional[float]:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def versus(ours: dict, other: dict, mode: str) -> str:
    """'better', 'tie' or 'worse' for one seed: fewer epochs to the target first, then the
    better best value."""
    def key(row: dict) -> tuple:
        reached = row["epochs_to_target"]
        return (-(reached if reached is not None else math.inf), score(row["best"], mode))

    ours_key, other_key = key(ours), key(other)
    return "better" if ours_key > other_key else "tie" if ours_key == other_key else "worse"


def paired(ours: Sequence[dict], other: Sequence[dict], budget: int, mode: str) -> dict:
    """Seed-by-seed comparison of two strategies: wins/ties/losses and a one-sided Wilcoxon
    signed-rank test that `ours` needs fewer epochs to the target (a seed where a strategy
    never reaches it counts as budget + 1 epochs: more than any reach)."""
    from scipy.stats import wilcoxon

    verdicts = [versus(a, b, mode) for a, b in zip(ours, other)]
    cost = [[budget + 1 if r["epochs_to_target"] is None else r["epochs_to_target"]
             for r in rows] for rows in (ours, other)]
    differences = [a - b for a, b in zip(*cost)]
    p_value = None
    if any(differences):
        p_value = float(wilcoxon(cost[0], cost[1], alternative="less",
                                 zero_method="wilcox").pvalue)
    return {"better": verdicts.count("better"), "tie": verdicts.count("tie"),
            "worse": verdicts.count("worse"), "wilcoxon_p_less": p_value,
            "median_difference": statistics.median(differences) if differences else None}


def band(curves: Sequence[Sequence[Optional[float]]], mode: str) -> dict[str, list]:
    """Quartiles, epoch by epoch, of anytime curves (None, no value yet, is the worst)."""
    missing = -math.inf if objective.sign(mode) > 0 else math.inf
    length = min((len(c) for c in curves), default=0)
    return {name: [quantile([c[i] for c in curves], share, missing) for i in range(length)]
            for name, share in (("q25", 0.25), ("median", 0.5), ("q75", 0.75))}


def summarise(values: dict[str, dict[int, list]], baseline: str, budget: int, mode: str,
              compared: tuple[str, str]) -> dict:
    """Every strategy's figures over seeds for one budget. `values`: strategy -> seed -> its
    results' objective values in the order the driver got them; `baseline` defines each seed's
    target (its best with the budget)."""
    seeds = sorted(values[baseline])
    targets = {s: best(values[baseline][s], mode) for s in seeds}
    per = {name: [seed_figures(by_seed[s], targets[s], budget, mode) for s in seeds]
           for name, by_seed in values.items()}
    out: dict[str, Any] = {"budget_epochs": budget, "seeds": len(seeds),
                           "targets": [targets[s] for s in seeds], "strategies": {}}
    for name, rows in per.items():
        out["strategies"][name] = {
            "epochs_to_target": spread([r["epochs_to_target"] for r in rows]),
            "ratio": spread([r["ratio"] for r in rows]),
            "best": spread([r["best"] for r in rows]),
            "epochs_spent": spread([r["epochs"] for r in rows]),
            "anytime": band([anytime(values[name][s], budget, mode) for s in seeds], mode),
            "per_seed": rows,
        }
    ours, other = compared
    if ours in per and other in per:
        out["paired"] = {"ours": ours, "other": other,
                         **paired(per[ours], per[other], budget, mode)}
    return out


# ---- the published protocols' figures over many tasks (search/replay/protocol.py) ------------

def seconds_to_target(values: Sequence[Any], times: Sequence[float], target: float,
                      mode: str) -> Optional[float]:
    """The virtual clock when the first result at least as good as `target` came in."""
    reached = epochs_to_target(values, target, mode)
    return None if reached is None else float(times[reached - 1])


def regret(value: Optional[float], worst: float, best: float, mode: str) -> float:
    """Normalised regret of a best-so-far `value`: 0 at the task's best known value, 1 at its
    worst (and 1 before any value), clipped to [0, 1]: a value past the known best is no better
    than it (pure)."""
    span = score(best, mode) - score(worst, mode)
    if not objective.finite(value) or span <= 0:
        return 1.0
    return min(1.0, max(0.0, (score(best, mode) - score(value, mode)) / span))


def checkpoints(values: Sequence[Any], at: Sequence[int], mode: str) -> list[Optional[float]]:
    """The best value after each count of epochs in `at` (ascending; the last best is held
    past the search's end; None before the first finite value)."""
    out: list[Optional[float]] = []
    current: Optional[float] = None
    position = 0
    for count in at:
        while position < min(count, len(values)):
            if objective.better(values[position], current, mode):
                current = float(values[position])
            position += 1
        out.append(current)
    return out


def ranks(costs: dict[str, float]) -> dict[str, float]:
    """Each name's rank by cost, 1 = lowest, ties sharing their mean rank (pure)."""
    ordered = sorted(costs, key=lambda n: costs[n])
    out: dict[str, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and costs[ordered[j + 1]] == costs[ordered[i]]:
            j += 1
        for name in ordered[i:j + 1]:
            out[name] = (i + j) / 2 + 1
        i = j + 1
    return out


def wilcoxon_less(ours: Sequence[float], other: Sequence[float]) -> Optional[float]:
    """One-sided Wilcoxon signed-rank p-value that `ours` is lower than `other`, pair by pair;
    None when every pair ties."""
    from scipy.stats import wilcoxon

    if not any(a != b for a, b in zip(ours, other)):
        return None
    return float(wilcoxon(list(ours), list(other), alternative="less",
                          zero_method="wilcox").pvalue)
