"""What the report's Optuna plots rest on: every trial's objective at one common epoch.

Optuna plots COMPLETE trials only. Under ASHA most trials are stopped early (2 of 12 ran their
budget in one search), so plots of the completed trials alone rest on a handful of points, and
fANOVA importances over 2 trials are noise shown as a finding. Trials stopped at different
epochs cannot be ranked by their last values either (a trial stopped at epoch 1 has not had the
chance to reach a finished trial's score). Hyperband's convention compares trials at a rung, a
budget they all reached; BOHB fits its model on the highest budget with enough observations,
|D_b| >= N_min + 2 with N_min = d + 1 for d parameters (Falkner et al., 2018). The plots follow
it: each trial's value at the highest rung (or the full budget) that at least d + 3 trials
reached, or, when none did, at the epoch the most trials reached. Every plot says how many
trials it rests on and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

import optuna
from optuna.trial import TrialState, create_trial

from search.engine.quiet import quiet_optuna


@dataclass(frozen=True)
class Basis:
    """The epoch the plots read every trial's objective at."""
    epoch: int
    trials: int  # trials with a finite value at `epoch`
    of: int  # every trial of the search
    need: int  # d + 3: BOHB's enough observations for d parameters
    enough: bool  # `epoch` was reached by `need` trials (else: by the most trials)
    budget: int  # max_epochs

    def caption(self, metric: str) -> str:
        """One line under each plot."""
        where = "the full budget" if self.epoch == self.budget else f"rung {self.epoch}"
        if self.enough:
            why = (f"{where} is the highest rung at least {self.need} trials reached "
                   f"(BOHB's rule: parameters + 3)")
        else:
            why = (f"no rung was reached by {self.need} trials (BOHB's rule: parameters + 3), "
                   f"so the epoch the most trials reached")
        return (f"Rests on {self.trials} of {self.of} trials: each trial's {metric} at epoch "
                f"{self.epoch}, whether it completed, was stopped later or is still running; "
                f"{why}.")


def _value(trial: optuna.trial.FrozenTrial, epoch: int) -> Optional[float]:
    value = trial.intermediate_values.get(epoch)
    return value if value is not None and math.isfinite(value) else None


def _usable(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials whose sampled parameters read back (a trial kept without them cannot be
    placed on a parameter's axis)."""
    return [t for t in study.get_trials(deepcopy=False)
            if "params_error" not in t.user_attrs]


def choose(study: optuna.Study, rungs: Iterable[int], max_epochs: int,
           parameters: int) -> Optional[Basis]:
    """The epoch the plots read (see the module's rule); None when no trial has a value."""
    trials = _usable(study)
    need = parameters + 3
    candidates = sorted({*(r for r in rungs if 0 < r < max_epochs), max_epochs})
    counts = {epoch: sum(_value(t, epoch) is not None for t in trials) for epoch in candidates}
    reached = [epoch for epoch in candidates if counts[epoch] >= need]
    if reached:
        epoch, enough = max(reached), True
    else:
        epoch, enough = max(candidates, key=lambda e: (counts[e], e)), False
    if counts[epoch] == 0:
        return None
    return Basis(epoch, counts[epoch], len(study.trials), need, enough, max_epochs)


def at(study: optuna.Study, epoch: int) -> optuna.Study:
    """A study of every trial that has a finite value at `epoch`, COMPLETE with that value
    (what Optuna's plots read), its parameters and attributes kept."""
    with quiet_optuna():
        plotted = optuna.create_study(direction=study.direction, study_name=study.study_name)
        if study.metric_names:
            plotted.set_metric_names(study.metric_names)
        plotted.add_trials([
            create_trial(state=TrialState.COMPLETE, value=value, params=t.params,
                         distributions=t.distributions, user_attrs=t.user_attrs,
                         intermediate_values={e: v for e, v in t.intermediate_values.items()
                                              if e <= epoch and math.isfinite(v)})
            for t in _usable(study) if (value := _value(t, epoch)) is not None])
    return plotted
