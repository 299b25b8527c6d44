"""How a search of several objectives got its Pareto front: the hypervolume of the front found so
far against the trial-epochs spent, the figure that compares searches of different schedulers
(a stopped trial spends epochs and adds no point; bench/objectives.py measures the same).

- The points are the candidates (search.experiment.results.Results.candidates): the trials that
  ran their whole budget and hold every constraint, each counted from the moment its last epoch
  was reported (Ray's `timestamp`); the epochs spent then are every epoch of every trial
  reported by that moment, those of stopped trials included.
- The reference point is the candidates' worst value of each objective, moved out by a tenth of
  the objective's range (or of its value, when every candidate has the same), so that the
  front's ends add volume too (a reference on the nadir gives its extreme points none).

Pure functions of the record: the report draws what `history` returns.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

from search.engine import pareto
from search.spec import objective

MARGIN = 0.1  # the reference's distance beyond the worst candidate, as a share of the range


@dataclass(frozen=True)
class History:
    epochs: list[int]  # trial-epochs spent when each candidate ended, ascending
    volumes: list[float]  # the hypervolume of the front of the candidates ended by then
    reference: tuple[float, ...]


def reference(points: Sequence[Sequence[float]], modes: Sequence[str]) -> tuple[float, ...]:
    """The worst value of each objective moved out by MARGIN of its range (pure)."""
    return tuple(worst - objective.sign(mode) * MARGIN * (abs(best - worst) or abs(worst) or 1.0)
                 for (best, worst), mode in zip(pareto.bounds(points, modes), modes))


def history(results) -> History:
    """The hypervolume of the front after each candidate ended (see the module); empty when no
    trial ran its whole budget, or when the results have no timestamps."""
    modes = [mode for _, mode in results.all_objectives]
    candidates = results.candidates()
    ends = {t.trial_id: float(t.results[-1]["timestamp"]) for t in results.trials
            if t.trial_id in candidates and objective.finite(t.results[-1].get("timestamp"))}
    finite = {t: p for t, p in candidates.items() if t in ends
              and all(objective.finite(v) for v in p)}
    if not finite:
        return History([], [], ())
    ref = reference(list(finite.values()), modes)
    stamps = sorted(float(r["timestamp"]) for t in results.trials for r in t.results
                    if objective.finite(r.get("timestamp")))
    epochs, volumes, seen = [], [], []
    for trial_id in sorted(finite, key=lambda t: (ends[t], t)):
        seen.append(finite[trial_id])
        epochs.append(bisect.bisect_right(stamps, ends[trial_id]))  # reported by then
        volumes.append(pareto.hypervolume(seen, modes, ref))
    return History(epochs, volumes, ref)
