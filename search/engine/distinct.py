"""A sampler that does not propose a configuration its study already holds.

In a space of choices and integers (a block type, a depth, NAS-Bench-201's six operations) a
model-based sampler proposes the same configuration again and again once its model has settled:
multivariate TPE on NAS-Bench-201 spent 8-10 of 100 trials on repeats (bench/README.md, several
objectives). A repeat trains a model the search has already trained, or is training now, and
teaches it nothing new. Optuna leaves this to the user's objective function (its FAQ: look the
parameters up among the study's trials); a Tune searcher has no objective function, so the rule
sits around the sampler: a joint proposal (`sample_relative`) that repeats a configuration of
the study is drawn again, up to `tries` times. A model that has settled keeps proposing its mode
(TPE scores 24 candidates and takes the best): then the proposal is drawn at random over the same
parameters until it is new (as BOHB spends a share of its proposals at random), and only when
`tries` random draws all repeat does a repeat stand.

Where a parameter is continuous a repeat has probability zero and nothing changes. Trials
queued with fixed parameters (a warm start's `queue_best`) run as queued: the user asked for
them. Configurations told by a warm start count as held: an earlier search trained them.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from optuna import Study
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

TRIES = 10  # joint proposals drawn again for one trial before a repeat is let through


def repeats(proposal: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """Whether `proposal` (a joint proposal, which may hold conditional parameters the trial
    will not use) is the configuration `held` (a trial's parameters, only those it used):
    every parameter of `held` has the same value in `proposal` (pure)."""
    return bool(held) and all(name in proposal and proposal[name] == value
                              for name, value in held.items())


class Distinct(BaseSampler):
    """`inner`, except that its joint proposals repeat no configuration the study holds (see the
    module's docstring). Counted: `redrawn`, proposals of `inner` drawn again; `randomised`,
    trials given a random configuration after that; `repeated`, trials that repeat one all
    the same. Other attributes are `inner`'s (BOHB's budgets, DEHB's epochs)."""

    def __init__(self, inner: BaseSampler, tries: int = TRIES, seed: Optional[int] = None) -> None:
        self.inner, self.tries = inner, tries
        self._random = RandomSampler(seed=seed)
        self.redrawn = self.randomised = self.repeated = 0

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not yet set (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.inner, name)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        proposal = self.inner.sample_relative(study, trial, search_space)
        if not proposal or trial.system_attrs.get("fixed_params"):
            return proposal
        held = [t.params for t in study.get_trials(deepcopy=False)
                if t.number != trial.number and t.params]

        def new(proposal: Mapping[str, Any]) -> bool:
            return not any(repeats(proposal, params) for params in held)

        for _ in range(self.tries):
            if new(proposal):
                return proposal
            self.redrawn += 1
            proposal = self.inner.sample_relative(study, trial, search_space)
        if new(proposal):
            return proposal
        for _ in range(self.tries):
            drawn = {name: self._random.sample_independent(study, trial, name, distribution)
                     for name, distribution in search_space.items()}
            if new(drawn):
                self.randomised += 1
                return drawn
        self.repeated += 1
        return proposal

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Optional[Sequence[float]]) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self._random.reseed_rng()


def unwrapped(sampler: BaseSampler) -> BaseSampler:
    """The sampler `Distinct` wraps, or `sampler` itself."""
    return sampler.inner if isinstance(sampler, Distinct) else sampler
