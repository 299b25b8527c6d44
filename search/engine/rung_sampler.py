"""BOHB's model as an Optuna sampler (`sampler: {type: bohb}`): TPE fitted on the results at one
budget, the highest of the search's rungs with enough observations, with a share of random
proposals (Falkner, Klein, Hutter, "BOHB: Robust and Efficient Hyperparameter Optimization at
Scale", ICML 2018, section 4 and Algorithm 2).

Why not plain TPE over a multi-fidelity scheduler: Optuna's TPE ranks a trial by its state (a
COMPLETE trial above every PRUNED one, PRUNED ones by how far they got), so over ASHA it learns
from the trials the scheduler let run on, those that looked best at the first rungs, and proposes
more of what *starts* well (bench/README.md §9). BOHB instead compares trials only at one budget
where they all have a result, the largest with at least `min_points` of them, so the model
learns which configurations are good *at that budget* from every trial that got there, whether
it was stopped, paused or finished afterwards; a share `random_fraction` of proposals is drawn
at random, which keeps the model honest where early budgets mislead.

The TPE itself is Optuna's (`TPESampler`), handed a view of the study in which every trial with
a result at the chosen budget is COMPLETE with that result as its value; trials still running
without one are RUNNING (for the constant liar). Budgets are the epochs at which the search's
scheduler compares trials, and the full budget (search.engine.samplers.build_searcher sets
them). Under a scheduler without rungs (FIFO) it is TPE on the completed trials with a random
share.

With several objectives the model is Optuna's multi-objective TPE on the same view: Optuna keeps
no intermediate values for a study of several objectives, so the searcher saves each epoch's
values as a user attribute of the trial (`values_key`), and a trial's result at a budget is its
vector there (MO-ASHA's rungs compare the same vectors; issue 21). This is what lets the model
learn from the trials MO-ASHA paused or stopped, which plain multi-objective TPE never sees (it
reads only COMPLETE trials, and there is no pruning of several objectives in Optuna).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


VALUES_PREFIX = "values_at_epoch_"


def values_key(epoch: int) -> str:
    """The user attribute holding a trial's values of several objectives after `epoch`."""
    return f"{VALUES_PREFIX}{int(epoch)}"


def values_at(trial: FrozenTrial, budget: int) -> Optional[list[float]]:
    """The trial's result at `budget` epochs, one value per objective (pure): with one, its
    intermediate value at that step (or, for a trial that completed exactly there, its value);
    with several, the values saved for that epoch. None when it has none there, or one is not
    finite."""
    several = trial.values is not None and len(trial.values) > 1 or any(
        k.startswith(VALUES_PREFIX) for k in trial.user_attrs)
    if several:  # (the searcher saves its last epoch's values too when it tells the trial)
        values = trial.user_attrs.get(values_key(budget))
    else:
        value = trial.intermediate_values.get(budget)
        if value is None and trial.state == TrialState.COMPLETE and trial.value is not None \
                and trial.intermediate_values and max(trial.intermediate_values) == budget:
            value = trial.value
        values = None if value is None else [value]
    if values is None or not all(np.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def value_at(trial: FrozenTrial, budget: int) -> Optional[float]:
    """The trial's result at `budget` epochs of its one objective (see values_at; pure)."""
    values = values_at(trial, budget)
    return None if values is None else values[0]


def model_budget(trials: Sequence[FrozenTrial], budgets: Sequence[int],
                 min_points: int) -> Optional[int]:
    """BOHB's budget to fit the model on: the largest with at least `min_points` trials that
    have a result there, or None when no budget has that many (pure)."""
    for budget in sorted(budgets, reverse=True):
        if sum(values_at(t, budget) is not None for t in trials) >= min_points:
            return budget
    return None


def at_budget(trial: FrozenTrial, budget: int) -> Optional[FrozenTrial]:
    """The trial as the model sees it: COMPLETE with its result at `budget`; RUNNING while it
    runs without one; None otherwise (pure)."""
    values = values_at(trial, budget)
    if values is not None:
        state = TrialState.COMPLETE
    elif trial.state == TrialState.RUNNING:
        state, values = TrialState.RUNNING, None
    else:
        return None
    return FrozenTrial(number=trial.number, state=state, value=None, values=values,
                       datetime_start=trial.datetime_start,
                       datetime_complete=trial.datetime_complete, params=trial.params,
                       distributions=trial.distributions, user_attrs={},
                       system_attrs=trial.system_attrs, intermediate_values={},
                       trial_id=trial.number)  # (a view's id: never written to)


class _AtBudget:
    """The study as TPE sees it: its trials at one budget (everything else is the study's)."""

    def __init__(self, study: Study, trials: list[FrozenTrial]) -> None:
        self._study, self._trials = study, trials

    def _get_trials(self, deepcopy: bool = False, states: Optional[Sequence] = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        return [t for t in self._trials if states is None or t.state in states]

    def get_trials(self, deepcopy: bool = False, states: Optional[Sequence] = None
                   ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy, states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self._get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class BOHBSampler(BaseSampler):
    """BOHB's proposal rule over Optuna's TPE (see the module's docstring)."""

    def __init__(self, *, seed: Optional[int], random_fraction: float,
                 min_points: Optional[int], multivariate: bool, constant_liar: bool,
                 n_ei_candidates: int) -> None:
        self.seed, self.random_fraction = seed, random_fraction
        self.min_points_given = min_points
        self.budgets: list[int] = []
        self.dims = 1
        # n_startup_trials 0: whether there are enough points is decided here, per budget.
        self._tpe = TPESampler(seed=seed, n_startup_trials=0, multivariate=multivariate,
                               group=multivariate, constant_liar=constant_liar,
                               n_ei_candidates=n_ei_candidates)
        self._random = RandomSampler(seed=seed)

    def fit_budgets(self, budgets: Sequence[int], dims: int) -> None:
        """The epochs the scheduler compares trials at (with the full budget), and how many
        parameters the space has (BOHB's default `min_points`: one more)."""
        self.budgets, self.dims = sorted(set(int(b) for b in budgets)), max(1, dims)

    @property
    def min_points(self) -> int:
        return self.min_points_given if self.min_points_given is not None else self.dims + 1

    def _view(self, study: Study, trial: FrozenTrial) -> Optional[_AtBudget]:
        """The study at the model's budget, or None when this proposal is random (its share,
        or no budget has enough points yet)."""
        rng = np.random.default_rng([self.seed or 0, trial.number])
        if rng.random() < self.random_fraction:
            return None
        trials = [t for t in study.get_trials(deepcopy=False, states=FINISHED)
                  if t.number != trial.number]
        budget = model_budget(trials, self.budgets or [1], self.min_points)
        if budget is None:
            return None
        seen = [t for t in (at_budget(t, budget) for t in trials) if t is not None]
        return _AtBudget(study, seen)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        view = self._view(study, trial)
        if view is None:
            return {}
        return self._tpe.infer_relative_search_space(view, trial)  # type: ignore[arg-type]

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        view = self._view(study, trial) if search_space else None
        if view is None:
            return {}
        return self._tpe.sample_relative(view, trial, search_space)  # type: ignore[arg-type]

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        view = self._view(study, trial)
        if view is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        return self._tpe.sample_independent(view, trial, param_name,  # type: ignore[arg-type]
                                            param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._tpe.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Optional[Sequence[float]]) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()
        self._random.reseed_rng()

