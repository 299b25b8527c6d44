"""A sampler that proposes no configuration twice (search.engine.distinct), against real Optuna:
the repeat rule as a table, TPE on a space of 25 configurations with and without it, queued
trials that run as queued, trials still running, what it forwards, and that a launch's searcher
has it while the stock one does not."""

from __future__ import annotations

import pickle

import optuna
import pytest

from search.engine import compat
from search.engine.distinct import Distinct, repeats, unwrapped
from search.engine.ledger import Ledger
from search.engine.rung_sampler import BOHBSampler
from search.engine.samplers import FidelityAwareOptunaSearch, build_searcher
from search.spec.model import parse_spec

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.mark.parametrize("proposal, held, expected", [
    ({"a": 1, "b": 2}, {"a": 1, "b": 2}, True),
    ({"a": 1, "b": 3}, {"a": 1, "b": 2}, False),
    # a joint proposal holds conditional parameters the trial will not use
    ({"block": "basic", "width": 2, "scale": 0.5}, {"block": "basic", "width": 2}, True),
    ({"block": "basic", "width": 2}, {"block": "basic", "width": 2, "scale": 0.5}, False),
    ({"a": 1}, {}, False),  # a trial without parameters repeats nothing
    ({"x": 0.30000000000000004}, {"x": 0.3}, False),  # continuous: equal values only
])
def test_a_proposal_repeats_a_configuration_when_it_has_each_of_its_values(
        proposal, held, expected):
    assert repeats(proposal, held) is expected


def grid(trial: optuna.Trial) -> float:
    a = trial.suggest_categorical("a", [0, 1, 2, 3, 4])
    b = trial.suggest_categorical("b", [0, 1, 2, 3, 4])
    return -(a - 3) ** 2 - (b - 1) ** 2


def searched(sampler: optuna.samplers.BaseSampler, trials: int = 15) -> list[tuple]:
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(grid, n_trials=trials)
    return [(t.params["a"], t.params["b"]) for t in study.trials]


def tpe(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=3, multivariate=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tpe_repeats_configurations_of_a_small_space_and_distinct_tpe_does_not(seed):
    plain = searched(tpe(seed))
    assert len(set(plain)) < len(plain)  # the model settles on its mode
    sampler = Distinct(tpe(seed), seed=seed)
    found = searched(sampler)
    # the first 3 are TPE's random start, drawn one parameter at a time: not joint proposals
    assert len(set(found[3:])) == len(found) - 3
    assert not set(found[3:]) & set(found[:3])
    assert sampler.redrawn > 0 and sampler.randomised > 0 and sampler.repeated == 0
    assert searched(Distinct(tpe(seed), seed=seed)) == found  # seeded: the same search again


def test_when_every_configuration_is_held_a_repeat_stands_and_is_counted():
    sampler = Distinct(tpe(0), seed=0)
    found = searched(sampler, trials=30)
    assert len(set(found)) == 25 and sampler.repeated >= 5


def test_a_queued_trial_runs_as_queued_even_when_it_repeats_one():
    study = optuna.create_study(sampler=Distinct(tpe(0), seed=0), direction="maximize")
    study.optimize(grid, n_trials=6)
    best = dict(study.best_params)
    study.enqueue_trial(best)
    study.optimize(grid, n_trials=1)
    assert study.trials[-1].params == best


def test_a_running_trial_counts_as_held():
    """Ray's searcher asks for several trials before any ends: none repeats a running one."""
    study = optuna.create_study(sampler=Distinct(tpe(0), seed=0), direction="maximize")
    study.optimize(grid, n_trials=5)
    running = [study.ask() for _ in range(12)]
    configs = [(t.suggest_categorical("a", [0, 1, 2, 3, 4]),
                t.suggest_categorical("b", [0, 1, 2, 3, 4])) for t in running]
    ended = {(t.params["a"], t.params["b"]) for t in study.trials[:5]}
    assert len(set(configs)) == len(configs) and not set(configs) & ended


def test_it_forwards_what_the_wrapped_sampler_offers_and_survives_a_pickle():
    bohb = BOHBSampler(seed=0, random_fraction=0.0, min_points=None, multivariate=True,
                       constant_liar=True, n_ei_candidates=24)
    sampler = Distinct(bohb, seed=0)
    sampler.fit_budgets([1, 3, 9], dims=2)
    assert bohb.budgets == [1, 3, 9] and sampler.min_points == 3
    assert getattr(Distinct(tpe(0)), "epochs_of", None) is None  # what the searcher asks DEHB
    sampler.redrawn = 4
    again = pickle.loads(pickle.dumps(sampler))
    assert again.redrawn == 4 and again.budgets == [1, 3, 9] and unwrapped(again) is not again
    assert unwrapped(tpe(0)).__class__ is optuna.samplers.TPESampler


def spec_of(sampler: dict, repeat: bool):
    scheduler = ({"type": "dehb", "min_epochs": 1, "reduction_factor": 2}
                 if sampler["type"] == "dehb" else {"type": "asha", "grace_period": 1})
    return parse_spec({"name": "x", "data": {"dataset": "digits"},
                       "budget": {"trials": 4, "max_epochs": 2, "repeat": repeat},
                       "sampler": sampler, "scheduler": scheduler,
                       "space": {"block": {"choice": ["basic", "bottleneck"]},
                                 "width": {"choice": [0.5, 1.0]}}})


@pytest.mark.parametrize("sampler, repeat, wrapped", [
    ({"type": "tpe"}, False, True), ({"type": "bohb"}, False, True),
    ({"type": "random"}, False, True),
    ({"type": "tpe"}, True, False),  # a repeat study trains configurations again on purpose
    ({"type": "dehb"}, False, False),  # DEHB promotes a configuration as a new trial
    ({"type": "tpe", "stopped_trials": "complete"}, False, False),  # stock Ray + Optuna
])
def test_the_searcher_a_launch_builds_proposes_no_configuration_twice(sampler, repeat, wrapped):
    searcher = build_searcher(spec_of(sampler, repeat), Ledger(2, stop_tag="asha"))
    inner = compat.optuna_study(searcher).sampler
    assert isinstance(inner, Distinct) is wrapped
    stock = sampler.get("stopped_trials") == "complete"
    assert isinstance(searcher, FidelityAwareOptunaSearch) is not stock
    if sampler["type"] == "bohb":  # BOHB got its budgets before it was wrapped
        assert unwrapped(inner).budgets == [1, 2]
