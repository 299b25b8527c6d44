"""The number of trials a search makes, also after Ray restores it: how an experiment is given
a larger budget under its own name.

Ray Tune cannot add trials to a restored experiment (ray-project/ray#42221): its
`SearchGenerator` saves `num_samples` with its state, and a restore puts the saved count back
over whatever the restored tuner says. A restored launch therefore hands Tune a
`BudgetedGenerator`: Ray's own generator, wrapping the searcher exactly as Tune would
(`SearchGenerator(ConcurrencyLimiter(searcher))`, so the saved state of each layer restores into
the same layer), whose count is the spec's after the restore. The searcher goes on from its
exact saved state (Optuna's study and its sampler's random state travel in Ray's snapshot), so
a search of 12 trials given 8 more proposes what one of 20 would have, trial by trial.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.search_generator import SearchGenerator

from search.engine import compat


class BudgetedGenerator(SearchGenerator):
    """Ray's SearchGenerator making `trials` trials in all, whatever its saved state says."""

    def __init__(self, searcher: Any, trials: int) -> None:
        super().__init__(searcher)
        self.trials = trials

    def add_configurations(self, experiments: Any) -> None:
        super().add_configurations(experiments)  # a new run (or a restore Ray gave up on)
        compat.set_total_samples(self, self.trials)

    def set_state(self, state: dict) -> None:
        super().set_state(state)  # the saved count, and how many trials it has made
        compat.set_total_samples(self, self.trials)

    def adopt(self, trial: Any) -> None:
        """A trial Tune restored that the restored searcher never suggested (Ray uploads the
        trials of a snapshot before the searcher's state; a driver killed in between): the
        searcher takes it as its own (`adopt`), this generator counts it as made, so it does
        not make the budget's trials again; while unfinished it holds its place in the
        concurrency limit (paused: as a paused trial does), and ended it is told to the
        searcher with its last result. Called for every trial Tune adds,
        after Tune restored the searcher and the scheduler filed the trial by its status."""
        layers = [self]
        while hasattr(layers[-1], "searcher"):
            layers.append(layers[-1].searcher)
        adopt = getattr(layers[-1], "adopt", None)
        if adopt is None or not adopt(trial.trial_id, dict(trial.config)):
            return
        made = str(getattr(trial, "experiment_tag", "")).split("_", 1)[0]
        state = self.get_state()
        state["counter"] = max(state["counter"], int(made) if made.isdigit() else 0)
        self.set_state(state)
        if trial.status in (Trial.TERMINATED, Trial.ERROR):  # ended in the lag: told now
            layers[-1].on_trial_complete(trial.trial_id, result=trial.last_result or None,
                                         error=trial.status == Trial.ERROR)
            return
        hold_place(self, trial.trial_id)
        if trial.status == Trial.PAUSED:
            for layer in layers:
                if hasattr(layer, "on_pause"):
                    layer.on_pause(trial.trial_id)


def budget_trials(tuner: Any, trials: int) -> None:
    """Make the (restored) `tuner` run `trials` trials in all: its searcher wrapped as Tune
    wraps it, in a generator whose count is `trials`. Tune wraps a bare searcher itself and
    would warn that a limit on concurrency is ignored for a generator, so the limiter is put in
    here and the tuner's own limit cleared."""
    config = compat.tuner_tune_config(tuner)
    searcher = config.search_alg
    if isinstance(searcher, BudgetedGenerator):
        searcher.trials = trials
        return
    if config.max_concurrent_trials:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=config.max_concurrent_trials)
    config.search_alg = BudgetedGenerator(searcher, trials)
    config.max_concurrent_trials = None


def hold_place(search_alg: Any, trial_id: str) -> None:
    """A trial Tune restored as ended that runs on (a larger max_epochs) takes a place in the
    concurrency limit, as a trial the searcher suggested does until it ends; the limiter
    frees it when Tune tells it the trial ended."""
    while search_alg is not None:
        if isinstance(search_alg, ConcurrencyLimiter):
            if trial_id not in search_alg.live_trials:
                search_alg.live_trials.add(trial_id)
                search_alg.num_unfinished_live_trials += 1
            return
        search_alg = getattr(search_alg, "searcher", None)
