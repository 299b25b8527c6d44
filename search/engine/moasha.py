"""Stopping ASHA for several objectives (MO-ASHA, Schmucker et al. 2021, "Multi-objective
multi-fidelity hyperparameter optimization with application to fairness"; Syne Tune's
`MOASHA`): Ray's asynchronous successive halving with its rungs, brackets and bookkeeping, where
a trial that reaches a rung goes on only if it is among the rung's top ceil(n / eta) of the n
recorded there (itself included) by non-dominated sorting with NSGA-II's crowding distance
breaking ties (search.engine.pareto.best_first), in place of Ray's quantile of one metric. The
first trial at a rung always goes on, as in Ray's. Ray warns that its ASHA-type schedulers may
not work with several objectives: this one ranks by all of them.

A rung keeps each trial's vector of signed objectives (larger is better), so the record's
scheduler.json holds lists where a single-objective ASHA holds numbers
(search.engine.schedulers.RecordingASHA saves and loads either).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from search.engine import compat
from search.engine.pareto import Score, best_first, score


def on_rung(rungs: Sequence[tuple[int, dict]], reduction: float, trial_id: str, epoch: int,
            point: Score) -> str:
    """Ray's `_Bracket.on_result` with MO-ASHA's rule (pure but for recording `point` in the rung
    it reached): `rungs` highest first, as Ray keeps them, each (milestone, {trial: score})."""
    for milestone, recorded in rungs:
        if epoch < milestone or trial_id in recorded:
            continue
        action = TrialScheduler.CONTINUE
        if recorded:
            ranked = best_first({**recorded, trial_id: point})
            if ranked.index(trial_id) >= math.ceil(len(ranked) / reduction):
                action = TrialScheduler.STOP
        recorded[trial_id] = point
        return action
    return TrialScheduler.CONTINUE


class MOASHA(ASHAScheduler):
    """Ray's ASHA ranking its rungs by several objectives (see the module's docstring)."""

    def __init__(self, *, objectives: Sequence[tuple[str, str]], time_attr: str, max_t: int,
                 **kwargs: Any) -> None:
        # (no metric or mode: Tune hands it the primary objective's, and refuses a scheduler
        # built with its own)
        super().__init__(time_attr=time_attr, max_t=max_t, **kwargs)
        self.objectives = [tuple(o) for o in objectives]
        self.time_attr, self.max_t = time_attr, int(max_t)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.time_attr not in result:
            return TrialScheduler.CONTINUE
        if result[self.time_attr] >= self.max_t:
            action = TrialScheduler.STOP  # its budget (Ray's stop_last_trials, the default)
        else:
            action = self._decide(trial.trial_id, result)
        if action == TrialScheduler.STOP:
            compat.set_asha_num_stopped(self, compat.asha_num_stopped(self) + 1)
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        if self.time_attr not in result:
            return
        self._decide(trial.trial_id, result)
        del compat.asha_assignment(self)[trial.trial_id]

    def _decide(self, trial_id: str, result: dict) -> str:
        bracket = compat.asha_assignment(self)[trial_id]
        return on_rung(compat.bracket_rungs(bracket), bracket.rf, trial_id,
                       int(result[self.time_attr]), score(result, self.objectives))
