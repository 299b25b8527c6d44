"""Optuna inside Ray Tune: the sampler registry and the fidelity-aware `OptunaSearch`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import optuna
from ray.tune.search.optuna import OptunaSearch

from search.engine import compat
from search.engine.space import define_by_run
from search.engine.trial_states import OPTUNA_STATE
from search.experiment.outcome import outcome_of

if TYPE_CHECKING:
    from search.spec.model import Sampler, SearchSpec

# Each entry turns a validated `sampler:` section into an Optuna sampler instance.
SAMPLERS: dict[str, Callable[[Any], optuna.samplers.BaseSampler]] = {
    "tpe": lambda s: optuna.samplers.TPESampler(
        seed=s.seed, n_startup_trials=s.n_startup_trials, multivariate=s.multivariate,
        # `group` lets multivariate TPE model conditional parameters jointly per sub-space.
        group=s.multivariate, constant_liar=s.constant_liar),
    "gp": lambda s: optuna.samplers.GPSampler(seed=s.seed, n_startup_trials=s.n_startup_trials),
    "cmaes": lambda s: optuna.samplers.CmaEsSampler(
        seed=s.seed, n_startup_trials=s.n_startup_trials, sigma0=s.sigma0,
        warn_independent_sampling=False),
    "random": lambda s: optuna.samplers.RandomSampler(seed=s.seed),
    "qmc": lambda s: optuna.samplers.QMCSampler(
        seed=s.seed, qmc_type=s.qmc_type, scramble=s.scramble, warn_independent_sampling=False),
}


def build_sampler(sampler_spec: Sampler) -> optuna.samplers.BaseSampler:
    return SAMPLERS[sampler_spec.type](sampler_spec)


def build_searcher(spec: SearchSpec, scheduler_stops: Callable[[str], bool]) -> OptunaSearch:
    """The searcher a launch gives Tune, and the one `search.replay` drives without Ray's
    runtime: Optuna's sampler over the space's define-by-run function, told the truth about
    early-stopped trials unless the spec asks for stock Ray behaviour."""
    common = dict(space=define_by_run(spec.space), metric=spec.objective.metric,
                  mode=spec.objective.mode, sampler=build_sampler(spec.sampler))
    if spec.sampler.stopped_trials == "complete":
        return OptunaSearch(**common)  # stock Ray behaviour, kept for comparison
    return FidelityAwareOptunaSearch(**common, max_epochs=spec.budget.max_epochs,
                                     scheduler_stops=scheduler_stops)


class FidelityAwareOptunaSearch(OptunaSearch):
    """`OptunaSearch` that tells Optuna the truth about trials that did not run their budget.

    Intermediate values are reported per *epoch* (not per Tune iteration, which restarts count
    differently), non-finite values are kept out of the study, and the final state comes from
    `search.experiment.outcome` — PRUNED for a trial ASHA stopped early.
    """

    def __init__(self, *args: Any, max_epochs: int,
                 scheduler_stops: Callable[[str], bool] = lambda trial_id: True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_epochs = max_epochs
        self._scheduler_stops = scheduler_stops
        self._last: dict[str, dict] = {}

    def restore(self, checkpoint_path: str) -> None:
        # Ray restores a searcher by updating its __dict__ from the snapshot's pickle, which
        # carries a copy of the scheduler's stop record taken at snapshot time; keep the live
        # one (the restored scheduler's own set), or stops after a resume would go unseen.
        stops = self._scheduler_stops
        super().restore(checkpoint_path)
        self._scheduler_stops = stops

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._last[trial_id] = result
        value = result.get(self.metric)
        if trial_id in compat.told_trials(self) or value is None or not math.isfinite(value):
            return
        compat.optuna_trials(self)[trial_id].report(value, result.get("epoch", 0))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        told, live = compat.told_trials(self), compat.optuna_trials(self)
        if trial_id in told or trial_id not in live:
            return
        last = result or self._last.get(trial_id) or {}
        verdict = outcome_of(last, max_epochs=self._max_epochs, errored=error,
                             stopped_by_scheduler=self._scheduler_stops(trial_id))
        state = OPTUNA_STATE[verdict]
        value = last.get(self.metric) if state == optuna.trial.TrialState.COMPLETE else None
        compat.optuna_study(self).tell(live[trial_id], value, state=state)
        told.add(trial_id)
        self._last.pop(trial_id, None)
