"""A restored search's number of trials is the launch's: Ray's generator, wrapped as Tune wraps
it, with the count put back after Ray restores its saved one (search/engine/budget.py)."""

from __future__ import annotations

import optuna
from ray import tune
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from search.engine import compat
from search.engine.budget import BudgetedGenerator, budget_trials, hold_place


def _tuner(tmp_path, limit=2):
    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
                            metric="x", mode="max", seed=0)
    tuner = tune.Tuner(lambda config: {"x": 1.0}, tune_config=tune.TuneConfig(
        search_alg=searcher, num_samples=12, max_concurrent_trials=limit),
        run_config=tune.RunConfig(name="budget", storage_path=str(tmp_path)))
    return tuner, searcher


def test_the_tuner_gets_the_generator_and_limiter_tune_would_make_with_the_new_count(tmp_path):
    tuner, searcher = _tuner(tmp_path)
    budget_trials(tuner, 20)
    config = compat.tuner_tune_config(tuner)
    generator = config.search_alg
    assert isinstance(generator, BudgetedGenerator) and generator.trials == 20
    assert isinstance(generator.searcher, ConcurrencyLimiter)
    assert generator.searcher.max_concurrent == 2 and generator.searcher.searcher is searcher
    assert config.max_concurrent_trials is None  # the limiter is in place: Tune adds none
    assert compat.tuner_searcher(tuner) is searcher
    budget_trials(tuner, 24)  # again (a second extension in one process): the same layers
    assert config.search_alg is generator and generator.trials == 24

    unlimited, bare = _tuner(tmp_path, limit=None)
    budget_trials(unlimited, 5)
    assert compat.tuner_tune_config(unlimited).search_alg.searcher is bare


def test_the_saved_count_ray_restores_gives_way_to_the_launchs(tmp_path):
    tuner, _ = _tuner(tmp_path)
    budget_trials(tuner, 20)
    generator = compat.tuner_tune_config(tuner).search_alg
    # What SearchGenerator.restore_from_dir does last, with the state a 12-trial search saved.
    generator.set_state({"counter": 12, "total_samples": 12, "finished": False,
                         "experiment": None})
    assert generator.total_samples == 20 and not generator.is_finished()
    generator.set_state({"counter": 20, "total_samples": 12, "finished": False,
                         "experiment": None})
    assert generator.is_finished()


def test_a_trial_that_runs_on_holds_a_place_in_the_limit_until_it_ends(tmp_path):
    tuner, searcher = _tuner(tmp_path, limit=1)
    compat.told_trials(searcher).add("old")  # it ended before: the searcher was told then
    budget_trials(tuner, 20)
    generator = compat.tuner_tune_config(tuner).search_alg
    hold_place(generator, "old")
    hold_place(generator, "old")  # once
    limiter = generator.searcher
    assert limiter.live_trials == {"old"} and limiter.num_unfinished_live_trials == 1
    assert limiter.suggest("new") is None  # the limit is full
    generator.on_trial_complete("old", {"x": 0.5})
    assert limiter.live_trials == set() and limiter.suggest("new") is not None
    hold_place(None, "x")  # a replay's controller has no search algorithm: nothing to hold
