"""Promotion-based ASHA and PASHA as Ray Tune schedulers: trials PAUSE at a rung and are resumed
from their checkpoint when they earn a promotion, instead of stopping-based ASHA's "continue or
die" (ray-project/ray#32634, #44256).

Promotion ASHA is Algorithm 2 of Li et al., "A System for Massively Parallel Hyperparameter
Tuning" (MLSys 2020): rungs at grace * eta^k epochs below the budget; a trial that reaches a
rung is recorded there and waits, paused, holding no slot. When a slot frees, the highest rung
with a trial among its top floor(n / eta) of n recorded that has not been promoted yet promotes
that trial (it goes on from its checkpoint to the next rung); only when no trial is promotable
does a new trial start. A trial that reaches its rung promotable at once goes on without a
pause. Unlike stopping ASHA, a trial that looked poor early is never thrown away: it may still be
promoted once its rung has seen enough others, and the share promoted is 1/eta of a rung,
however the proposals compare with the rung's early history.

PASHA (Bohdal et al., "PASHA: Efficient HPO and NAS with Progressive Resource Allocation", ICLR
2023; Syne Tune's `PASHARungSystem`) is promotion ASHA whose maximum budget starts at its second
rung and grows one rung at a time, only while the ranking of the trials in the two top rungs is
unstable (a trial of the top rung left its group of similar ones, those within epsilon of it,
in the rung below; epsilon is estimated from the curves as the 90th percentile of the gaps
between trials whose order flipped and flipped back). Trials waiting at the current top rung are
promoted as soon as it grows.

The state of both is plain data (`state` / `load_state`): the rungs, who was promoted, who
waits paused where (and PASHA's top rung, epsilon and curves), so that a relaunched driver
decides exactly as the killed one would have, and a trial that waited paused before the kill
waits again (Tune resumes every unfinished trial as PENDING: it is put back to PAUSED when it
is added, before Tune starts it).

With several objectives (`objectives`: (metric, mode) of each) promotion ASHA is MO-ASHA
(Schmucker et al. 2021): a trial's score at a rung is its vector of objectives and a rung is
ranked by non-dominated sorting with NSGA-II's crowding distance breaking ties
(search.engine.pareto.best_first); a static objective (params, FLOPs) is known from the first
rung on.

The pure rules (`promotable`, `soft_ranking_changed`, `noise_epsilon`) have table
tests.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.engine.pareto import Score, best_first, score

# Outcomes a trial reports on the result it ends with (search.experiment.outcome): such a trial
# is never paused, its function returns after that result.
ENDING = frozenset({"diverged", "oom", "invalid"})


# ---- the pure rules ---------------------------------------------------------------------------

def promotable(rung: Mapping[str, Score], promoted: Iterable[str], eta: float,
               waiting: Iterable[str]) -> list[str]:
    """The trials of a rung that may be promoted now, best first: those among its top
    floor(n / eta) of the n recorded (`best_first`) that were not promoted yet and wait in
    `waiting` (pure)."""
    top = int(len(rung) / eta + 1e-9)
    ranked = best_first(rung)[:top]
    done, ready = set(promoted), set(waiting)
    return [t for t in ranked if t not in done and t in ready]


def soft_ranking_changed(top: Mapping[str, float], previous: Mapping[str, float],
                         epsilon: float) -> bool:
    """PASHA's test: whether a trial of the top rung left its group in the rung below (pure).
    The trials of `top` are sorted by their top-rung values and by their values one rung below
    (larger is better); the group of the k-th trial in the rung below is every trial within
    `epsilon` of it (walking out from it while within); the ranking changed when the k-th trial
    of the top rung is not in the k-th group. With fewer than 2 trials epsilon is 0."""
    ids = [t for t in top if t in previous]
    if len(ids) < 2:
        return False
    ordered_top = sorted(ids, key=lambda t: -top[t])
    below = sorted(ids, key=lambda t: -previous[t])
    for k, trial_id in enumerate(ordered_top):
        centre = previous[below[k]]
        group = {below[k]}
        for j in range(k + 1, len(below)):
            if previous[below[j]] < centre - epsilon:
                break
            group.add(below[j])
        for j in range(k - 1, -1, -1):
            if previous[below[j]] > centre + epsilon:
                break
            group.add(below[j])
        if trial_id not in group:
            return True
    return False


def noise_epsilon(curves: Mapping[str, Mapping[int, float]], low: int, high: int
                  ) -> Optional[float]:
    """PASHA's epsilon: at each epoch in (low, high], for every pair of trials with values there
    whose order, looking back epoch by epoch, flipped and then flipped back, the gap between them
    at that epoch; the 90th percentile of those gaps, or None when there is none (pure)."""
    gaps: list[float] = []
    seen: set[tuple[str, str]] = set()
    for epoch in range(high, low, -1):
        ids = sorted(t for t, c in curves.items() if epoch in c)
        if len(ids) < 2:
            continue
        history = np.array([[curves[t].get(e, np.nan) for e in range(epoch, 0, -1)]
                            for t in ids])  # column 0: this epoch, then backwards
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                if (ids[i], ids[j]) in seen:
                    continue
                seen.add((ids[i], ids[j]))
                order = np.sign(history[i] - history[j])
                now = order[0]
                if now == 0 or np.isnan(now):
                    continue
                back = order[1:]
                flipped = np.flatnonzero(back == -now)
                if flipped.size and np.any(back[flipped[0] + 1:] == now):
                    gaps.append(abs(history[i][0] - history[j][0]))
    return float(np.percentile(gaps, 90)) if gaps else None


def levels_of(milestones: Sequence[int], max_t: int) -> list[int]:
    """The epochs a trial may be run to: every rung, then the budget."""
    return [*milestones, max_t]


# ---- the schedulers ---------------------------------------------------------------------------

class PromotionASHA(FIFOScheduler):
    """Promotion-based ASHA (see the module's docstring). `milestones`: the rungs' epochs below
    `max_t`, lowest first (search.spec.schedulers.asha_rungs)."""

    def __init__(self, *, time_attr: str, max_t: int, milestones: Sequence[int],
                 reduction_factor: float, objectives: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.time_attr, self.max_t, self.eta = time_attr, int(max_t), float(reduction_factor)
        self.milestones = [int(m) for m in milestones]
        self.objective: Optional[str] = None
        self.sign = 1.0
        # Several objectives: (metric, mode) of each; () ranks by Tune's metric and mode.
        self.objectives = [tuple(o) for o in objectives]
        self.rungs: list[dict[str, Score]] = [{} for _ in self.milestones]
        self.promoted: list[set[str]] = [set() for _ in self.milestones]
        self.paused: dict[str, int] = {}  # trial id -> the rung it waits at

    # -- Tune's calls --
    def set_search_properties(self, metric: Optional[str], mode: Optional[str],
                              **spec: Any) -> bool:
        if metric:
            self.objective = metric
        if mode:
            self.sign = 1.0 if mode == "max" else -1.0
        return True

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        # A trial that waited paused when the last driver stopped: Tune resumes it as PENDING
        # and would run it; it waits again (Tune files it by its status right after this call).
        if trial.trial_id in self.paused and hasattr(trial, "set_status"):
            trial.set_status(Trial.PAUSED)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        epoch = int(result.get(self.time_attr, 0))
        if str(result.get("outcome", "")) in ENDING:
            return TrialScheduler.CONTINUE  # it ends itself with this result
        if epoch >= self.max_t:
            return TrialScheduler.STOP  # its budget: as Ray's ASHA says (not an early stop)
        rung = self._reached(trial.trial_id, epoch)
        if rung is None:
            return TrialScheduler.CONTINUE
        self.rungs[rung][trial.trial_id] = score(result, self.ranked_by())
        self.on_recorded(trial.trial_id, rung, epoch, result)
        # The slot this trial frees would promote the highest promotable trial: if that is
        # itself, it goes on without a pause.
        waiting = {trial.trial_id, *self.paused}
        first = self._next_promotion(waiting)
        if first == trial.trial_id:
            self._promote(trial.trial_id, rung, tune_controller)
            return TrialScheduler.CONTINUE
        self.paused[trial.trial_id] = rung
        _searcher_call(tune_controller, "on_pause", trial.trial_id)
        return TrialScheduler.PAUSE

    def on_trial_result_seen(self, trial_id: str, result: dict) -> None:
        """Every result of every trial (PASHA keeps the curves)."""

    def choose_trial_to_run(self, tune_controller: Any) -> Optional[Trial]:
        trials = tune_controller.get_trials()
        paused = {t.trial_id: t for t in trials if t.status == Trial.PAUSED
                  and t.trial_id in self.paused}
        chosen = self._next_promotion(paused)
        if chosen is not None:
            self._promote(chosen, self.paused[chosen], tune_controller)
            return paused[chosen]
        for trial in trials:
            if trial.status == Trial.PENDING and trial.trial_id not in self.paused:
                return trial
        return None

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.paused.pop(trial.trial_id, None)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.paused.pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.paused.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        return (f"{type(self).__name__}: rungs at {self.milestones}, "
                f"{len(self.paused)} paused")

    # -- the rule --
    def ranked_by(self) -> list[tuple[str, str]]:
        """(metric, mode) of each objective a rung is ranked by."""
        if getattr(self, "objectives", None):  # (pickled before several objectives: none)
            return self.objectives
        return [(str(self.objective), "max" if self.sign > 0 else "min")]

    def top_level(self) -> int:
        """The highest level (index into milestones + [max_t]) a trial may be promoted to."""
        return len(self.milestones)

    def on_recorded(self, trial_id: str, rung: int, epoch: int, result: dict) -> None:
        """A trial was recorded at a rung (PASHA checks its ranking here)."""

    def _reached(self, trial_id: str, epoch: int) -> Optional[int]:
        for rung, milestone in enumerate(self.milestones):
            if epoch >= milestone and trial_id not in self.rungs[rung]:
                return rung
        return None

    def _next_promotion(self, waiting: Iterable[str]) -> Optional[str]:
        ready = set(waiting)
        for rung in range(min(self.top_level(), len(self.milestones)) - 1, -1, -1):
            found = promotable(self.rungs[rung], self.promoted[rung], self.eta,
                               [t for t in ready if t not in self.paused
                                or self.paused[t] == rung])
            if found:
                return found[0]
        return None

    def _promote(self, trial_id: str, rung: int, tune_controller: Any) -> None:
        self.promoted[rung].add(trial_id)
        if self.paused.pop(trial_id, None) is not None:
            _searcher_call(tune_controller, "on_unpause", trial_id)

    # -- its state, as plain JSON --
    def promotion_state(self) -> dict:
        # Each rung as [trial id, value] pairs in the order recorded: ties are broken by that
        # order (`promotable`), and the record writes JSON with its keys sorted.
        return {"milestones": self.milestones,
                "rungs": [[[t, _saved(v)] for t, v in rung.items()] for rung in self.rungs],
                "promoted": [sorted(p) for p in self.promoted],
                "paused": dict(self.paused)}

    def load_promotion_state(self, state: dict) -> None:
        if not state.get("rungs") and not state.get("paused"):
            return  # nothing saved yet (a driver killed before its first snapshot)
        if state.get("milestones") != self.milestones:
            raise ValueError(f"the saved state has rungs at epochs {state.get('milestones')} "
                             f"but this scheduler has them at {self.milestones}")
        # (a state saved before the pairs has each rung as a mapping, its order lost)
        self.rungs = [{t: _loaded(v) for t, v in (rung.items() if isinstance(rung, dict)
                                                  else rung)}
                      for rung in state["rungs"]]
        self.promoted = [set(p) for p in state["promoted"]]
        self.paused = {t: int(r) for t, r in state["paused"].items()}


class PASHA(PromotionASHA):
    """PASHA (see the module's docstring): promotion ASHA with a maximum that grows."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.top = min(1, len(self.milestones))  # the current top level: its second rung
        self.epsilon = 0.0
        self.curves: dict[str, dict[int, float]] = {}

    def top_level(self) -> int:
        return self.top

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        value = result.get(self.objective)
        if value is not None and math.isfinite(value):
            self.curves.setdefault(trial.trial_id, {})[int(result.get(self.time_attr, 0))] = \
                self.sign * float(value)
        return super().on_trial_result(tune_controller, trial, result)

    def on_recorded(self, trial_id: str, rung: int, epoch: int, result: dict) -> None:
        if rung != self.top or self.top >= len(self.milestones):
            return
        low = self.milestones[self.top - 1] if self.top >= 1 else 0
        found = noise_epsilon({t: c for t, c in self.curves.items()
                               if t in self.rungs[self.top]}, low, self.milestones[self.top])
        if found is not None:
            self.epsilon = found
        if self.top >= 1 and soft_ranking_changed(self.rungs[self.top],
                                                  self.rungs[self.top - 1], self.epsilon):
            self.top += 1

    def promotion_state(self) -> dict:
        return {**super().promotion_state(), "top": self.top, "epsilon": self.epsilon,
                "curves": {t: {str(e): v for e, v in c.items()} for t, c in self.curves.items()}}

    def load_promotion_state(self, state: dict) -> None:
        super().load_promotion_state(state)
        if "top" in state:
            self.top, self.epsilon = int(state["top"]), float(state["epsilon"])
            self.curves = {t: {int(e): float(v) for e, v in c.items()}
                           for t, c in state["curves"].items()}


def _saved(value: Score) -> Any:
    """A score as JSON: -inf (no finite value) as null, a vector as a list."""
    if isinstance(value, tuple):
        return [_saved(v) for v in value]
    return None if value == -math.inf else value


def _loaded(value: Any) -> Score:
    if isinstance(value, list):
        return tuple(_loaded(v) for v in value)
    return -math.inf if value is None else float(value)


def _searcher_call(tune_controller: Any, name: str, trial_id: str) -> None:
    """Tell the searcher a trial paused or goes on (search.engine.limiter counts the trials out
    without the paused ones), as Ray's HyperBandForBOHB tells its searcher."""
    search_alg = getattr(tune_controller, "search_alg", None)
    method = getattr(getattr(search_alg, "searcher", None), name, None)
    if method is not None:
        method(trial_id)
