"""Trials Tune restores that the restored searcher never suggested (search/engine/budget.py
`BudgetedGenerator.adopt`, search/engine/samplers.py `FidelityAwareOptunaSearch.adopt`): Ray
uploads an experiment's snapshot file by file, the trials before the searcher's state, so a
driver killed in between leaves trials whose suggestion the saved searcher lacks. Found by the
promotion-ASHA kill test (tests/e2e/test_one_driver.py): the resumed launch died on a KeyError
at the first result of such a trial, or made the lost trials again beyond the budget."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState
from ray.tune.experiment import Trial
from ray.tune.search import ConcurrencyLimiter
from trials import FakeTrial

from search.engine import compat
from search.engine.budget import BudgetedGenerator
from search.engine.ledger import Ledger
from search.engine.limiter import PausedFreeLimiter
from search.engine.samplers import build_searcher
from search.spec.model import parse_spec

SPACE = {"lr": {"float": [0.001, 0.5], "log": True},
         "block": {"choice": ["basic", "preact"]},
         "milestones": {"choice": [[0.5, 0.75], [0.3, 0.6, 0.9]]}}


def searcher_of(sampler: str = "tpe"):
    spec = parse_spec({"name": "adopt", "data": {"dataset": "digits"},
                       "budget": {"trials": 20, "max_epochs": 3},
                       "sampler": {"type": sampler, "seed": 3}, "space": SPACE})
    return build_searcher(spec, Ledger(3, stop_tag="asha"))


def ended(searcher, trial_id: str, value: float) -> None:
    for epoch in (1, 2, 3):
        searcher.on_trial_result(trial_id, {"epoch": epoch, "val_acc": value * epoch / 3})
    searcher.on_trial_complete(trial_id, {"epoch": 3, "val_acc": value})


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_lost_suggestions_are_taken_back_and_the_search_goes_on_exactly(sampler, tmp_path):
    alone = searcher_of(sampler)
    for number in range(4):
        alone.suggest(f"t{number}")
        ended(alone, f"t{number}", 0.1 * number)
    alone.save(str(tmp_path / "searcher.pkl"))  # the snapshot that reached the storage
    lost = {f"t{n}": alone.suggest(f"t{n}") for n in (4, 5)}  # made after it, then killed

    restored = searcher_of(sampler)
    restored.restore(str(tmp_path / "searcher.pkl"))
    for trial_id, config in lost.items():
        assert restored.adopt(trial_id, config)
    assert not restored.adopt("t4", lost["t4"])  # known now
    assert not restored.adopt("t0", {})  # known all along (told)
    study = compat.optuna_study(restored)
    assert [t.state for t in study.trials].count(TrialState.FAIL) == 0  # no proposal thrown
    for trial_id in lost:
        ended(alone, trial_id, 0.9)
        ended(restored, trial_id, 0.9)
    # the sampler goes on from the state the lost suggestions left it in
    assert [restored.suggest(f"n{i}") for i in range(3)] == [alone.suggest(f"n{i}")
                                                             for i in range(3)]


def test_a_lost_suggestion_the_sampler_would_not_make_again_is_told_with_its_own_params(
        tmp_path):
    searcher = searcher_of("random")
    config = {"lr": 0.0123, "block": "preact", "milestones": [0.3, 0.6, 0.9]}
    assert searcher.adopt("lost", config)
    study = compat.optuna_study(searcher)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING]
    ended(searcher, "lost", 0.7)  # its results and its end reach the study
    [told] = study.get_trials(states=(TrialState.COMPLETE,))
    assert told.params == {"lr": 0.0123, "block": "preact", "milestones": 1}  # by position
    assert told.value == 0.7 and told.intermediate_values[2] == pytest.approx(0.7 * 2 / 3)


def test_a_result_of_a_trial_no_searcher_state_knows_is_no_crash():
    searcher = searcher_of()
    searcher.on_trial_result("unknown", {"epoch": 1, "val_acc": 0.5})
    searcher.on_trial_complete("unknown", {"epoch": 1, "val_acc": 0.5})
    assert compat.optuna_study(searcher).trials == []


def generator_with(made: int, limit: type = ConcurrencyLimiter):
    searcher = searcher_of("random")
    generator = BudgetedGenerator(limit(searcher, max_concurrent=1), trials=8)
    for number in range(made):
        generator.searcher.suggest(f"t{number}")
    state = generator.get_state()
    state.update(counter=made, total_samples=8)
    generator.set_state(state)
    return generator, searcher


@pytest.mark.parametrize("status, live, paused", [
    (Trial.PENDING, {"t0", "lost"}, set()),
    (Trial.PAUSED, {"t0", "lost"}, {"lost"}),
    (Trial.TERMINATED, {"t0"}, set()),
])
def test_the_generator_counts_an_adopted_trial_as_made_and_holds_its_place(status, live,
                                                                           paused):
    generator, searcher = generator_with(1, PausedFreeLimiter)
    trial = FakeTrial("lost", {"lr": 0.01, "block": "basic", "milestones": [0.5, 0.75]},
                      status=status, last_result={"epoch": 3, "val_acc": 0.4})
    trial.experiment_tag = "5_lr=0.01,block=basic"
    generator.adopt(trial)
    assert generator.get_state()["counter"] == 5  # trials 2-5 are made: not made again
    assert generator.searcher.live_trials == live
    assert generator.searcher.paused == paused
    done = compat.optuna_study(searcher).get_trials(states=(TrialState.COMPLETE,))
    assert [t.value for t in done] == ([0.4] if status == Trial.TERMINATED else [])
    generator.adopt(trial)  # a trial it knows: nothing changes
    assert generator.get_state()["counter"] == 5 and generator.searcher.live_trials == live


def test_a_searcher_pickled_before_adoption_existed_adopts_nothing():
    """A tuner.pkl of an earlier version holds a searcher without its DefineByRun: it cannot
    make a point of the space, so it takes nothing (and a result of the trial is no crash)."""
    searcher = searcher_of()
    del searcher.define
    assert not searcher.adopt("lost", {"lr": 0.01, "block": "basic",
                                       "milestones": [0.5, 0.75]})
    searcher.on_trial_result("lost", {"epoch": 1, "val_acc": 0.5})
    assert compat.optuna_study(searcher).trials == []
