"""DEHB as the search's sampler and scheduler (search/engine/dehb.py): its coordinates as tables;
on a real Optuna study with the real `dehb` package, that each trial gets one of DEHB's budgets,
that DEHB is told each trial's value at its budget for the parameters it really had, that a
pickled sampler (a resumed search) goes on exactly as the original, and that it prints and
writes nothing; and that the scheduler stops a trial at its budget, found through the layers
Tune wraps the searcher in."""

from __future__ import annotations

import math
import os
import pickle
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from ray.tune.schedulers import TrialScheduler
from trials import FakeTrial

from search.engine.dehb import (WORST, DEHBSampler, EpochsStopper, decode, encode, epochs_for,
                                told_value)
from search.engine.ledger import Ledger
from search.engine.samplers import build_searcher
from search.engine.schedulers import build_scheduler
from search.spec import schedulers as registry
from search.spec.model import parse_spec

LR = FloatDistribution(1e-4, 1e-1, log=True)


@pytest.mark.parametrize("distribution, u, expected", [
    (FloatDistribution(0.0, 2.0), 0.0, 0.0),
    (FloatDistribution(0.0, 2.0), 0.25, 0.5),
    (FloatDistribution(0.0, 2.0), 1.0, 2.0),
    (FloatDistribution(0.0, 2.0), 1.7, 2.0),  # DE's vectors are clipped into the cube
    (FloatDistribution(0.0, 2.0), -0.3, 0.0),
    (FloatDistribution(0.0, 1.0, step=0.25), 0.3, 0.25),  # on the step's grid
    (LR, 0.0, 1e-4),
    (LR, 1 / 3, 1e-3),  # log: equal parts per decade
    (LR, 1.0, 1e-1),
    (IntDistribution(1, 9), 0.5, 5),
    (IntDistribution(1, 9), 0.99, 9),
    (IntDistribution(0, 10, step=5), 0.3, 5),
    (IntDistribution(1, 100, log=True), 0.5, 10),
    (CategoricalDistribution(["a", "b", "c"]), 0.0, "a"),
    (CategoricalDistribution(["a", "b", "c"]), 0.34, "b"),
    (CategoricalDistribution(["a", "b", "c"]), 1.0, "c"),  # the end belongs to the last part
])
def test_a_coordinate_decodes_to_a_value_of_the_distribution(distribution, u, expected):
    got = decode(distribution, u)
    assert got == pytest.approx(expected) and type(got) is type(expected)
    assert distribution._contains(distribution.to_internal_repr(got))


@pytest.mark.parametrize("distribution, value", [
    (FloatDistribution(0.0, 2.0), 0.5), (LR, 3e-3), (IntDistribution(1, 9), 4),
    (IntDistribution(0, 10, step=5), 10), (IntDistribution(1, 100, log=True), 7),
    (CategoricalDistribution(["a", "b", "c"]), "b"), (CategoricalDistribution([True]), True),
])
def test_a_value_encodes_to_the_coordinate_that_decodes_back_to_it(distribution, value):
    u = encode(distribution, value)
    assert 0.0 <= u <= 1.0
    assert decode(distribution, u) == pytest.approx(value)


def closed(intermediate: dict[int, float], state=TrialState.PRUNED):
    return create_trial(state=TrialState.PRUNED if state == TrialState.FAIL else state,
                        value=intermediate[max(intermediate)] if state == TrialState.COMPLETE
                        else None, params={"lr": 0.01}, distributions={"lr": LR},
                        intermediate_values=intermediate)


@pytest.mark.parametrize("intermediate, state, values, budget, expected", [
    ({1: 0.2, 2: 0.3, 3: 0.4}, TrialState.PRUNED, None, 3, (0.4, 3)),  # stopped at its budget
    ({1: 0.2}, TrialState.PRUNED, None, 3, (None, 1)),  # cut short before it: no value
    ({1: 0.2, 9: 0.7}, TrialState.COMPLETE, [0.7], 9, (0.7, 9)),
    ({1: 0.2, 2: math.nan}, TrialState.PRUNED, None, 2, (None, 2)),  # diverged
    ({1: 0.2, 2: 0.3}, TrialState.FAIL, None, 2, (None, 2)),  # failed: DEHB's worst
])
def test_what_dehb_is_told_of_a_closed_trial(intermediate, state, values, budget, expected):
    assert told_value(closed(intermediate, state), state, values, budget) == expected


SPACE = {"lr": {"float": [1e-4, 1e-1], "log": True}, "momentum": {"float": [0.5, 0.99]},
         "optimizer": {"choice": ["sgd", "adamw"]}}


def dehb_spec(max_epochs: int = 9, trials: int = 40, **scheduler):
    return parse_spec({"name": "s", "data": {"dataset": "digits"},
                       "budget": {"trials": trials, "max_epochs": max_epochs},
                       "sampler": {"type": "dehb", "seed": 3},
                       "scheduler": {"type": "dehb", **scheduler}, "space": SPACE})


def run(searcher, scheduler, n_trials: int, curve=lambda config, epoch: 0.0, start: int = 0):
    """Trials one at a time as Tune runs them: suggested, trained until the scheduler stops
    them or the budget ends, closed. Returns {trial id: (config, epochs)}."""
    controller = SimpleNamespace(search_alg=SimpleNamespace(searcher=SimpleNamespace(
        searcher=searcher)))  # the generator and the limiter Tune wraps a searcher in
    ran = {}
    for number in range(start, start + n_trials):
        trial = FakeTrial(f"t{number}")
        trial.config = searcher.suggest(trial.trial_id)
        epoch, last = 0, {}
        while epoch < scheduler.ledger.max_epochs:
            epoch += 1
            last = {"epoch": epoch, "val_acc": curve(trial.config, epoch)}
            if math.isnan(last["val_acc"]):  # the trainer ends a diverged trial itself
                last["outcome"] = "diverged"
            searcher.on_trial_result(trial.trial_id, last)
            if scheduler.on_trial_result(controller, trial, last) == TrialScheduler.STOP \
                    or "outcome" in last:
                break
        scheduler.on_trial_complete(controller, trial, last)
        searcher.on_trial_complete(trial.trial_id, result=last)
        ran[trial.trial_id] = (trial.config, epoch)
    return ran


def parts(spec):
    ledger = Ledger(spec.budget.max_epochs, spec.scheduler.stop_tag)
    return build_searcher(spec, ledger), build_scheduler(spec.scheduler, spec.budget.max_epochs,
                                                         ledger)


def score(config, epoch):
    """Better with a larger learning rate and more epochs: DEHB's incumbent should find it."""
    return math.log10(config["lr"]) / 10 + 0.01 * epoch + (0.05 if config["optimizer"] == "sgd"
                                                            else 0.0)


def test_each_trial_trains_for_the_budget_dehb_gave_it_and_dehb_hears_its_value():
    spec = dehb_spec()
    searcher, scheduler = parts(spec)
    sampler = searcher._ot_study.sampler
    assert isinstance(sampler, DEHBSampler)
    # DEHB's own budgets are the registry's (validate, the report), in whole epochs.
    assert [registry.epochs_of(f) for f in sampler.optimizer.fidelities] == \
        registry.dehb_budgets(1, 9, 3) == [1, 3, 9]
    ran = run(searcher, scheduler, 30, curve=score)
    epochs = [e for _, e in ran.values()]
    assert set(epochs) == {1, 3, 9}  # every budget is used, and nothing else
    assert epochs[:9] == [1] * 9  # the first bracket starts 9 trials at the smallest budget
    # Stopped at a budget below the last: the scheduler's early stop, in the ledger.
    assert scheduler.ledger.stopped == {t for t, (_, e) in ran.items() if e < 9}
    assert sampler.optimizer._tell_counter == 30 and not sampler.jobs
    for (config, e), (_, vector, fitness, cost, fidelity, _) in zip(
            ran.values(), (h[:6] for h in sampler.optimizer.history)):
        assert registry.epochs_of(fidelity) == e == cost
        assert fitness == pytest.approx(-score(config, e))  # minimised: told the negation
        assert decode(LR, vector[0]) == pytest.approx(config["lr"])
    # Its incumbent is the best value it was told at any budget.
    best = max(score(c, e) for c, e in ran.values())
    assert -sampler.optimizer.inc_score == pytest.approx(best)
    study = searcher._ot_study
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == epochs.count(9)


def test_a_queued_trial_is_told_to_dehb_with_its_own_parameters():
    searcher, scheduler = parts(dehb_spec())
    # as a warm start's `enqueue` queues it (search.engine.warm)
    searcher._ot_study.enqueue_trial({"lr": 0.05, "momentum": 0.6, "optimizer": "adamw"})
    (config, _), = run(searcher, scheduler, 1).values()
    assert config == {"lr": 0.05, "momentum": 0.6, "optimizer": "adamw"}
    _, vector, *_ = searcher._ot_study.sampler.optimizer.history[0]
    assert decode(LR, vector[0]) == pytest.approx(0.05)
    assert decode(CategoricalDistribution(["sgd", "adamw"]), vector[2]) == "adamw"


def test_a_pickled_sampler_goes_on_exactly_as_the_original():
    """Ray pickles the searcher with its study and sampler at every snapshot: a resumed search
    continues DEHB's populations and brackets."""
    spec = dehb_spec()
    searcher, scheduler = parts(spec)
    run(searcher, scheduler, 13, curve=score)
    copy = pickle.loads(pickle.dumps(searcher))
    copy_scheduler = parts(spec)[1]
    copy_scheduler.ledger = scheduler.ledger = Ledger(9, "dehb")
    original = run(searcher, scheduler, 10, curve=score, start=13)
    resumed = run(copy, copy_scheduler, 10, curve=score, start=13)
    assert resumed == original


def test_dehb_prints_nothing_and_writes_nothing_where_it_runs(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    searcher, scheduler = parts(dehb_spec())
    run(searcher, scheduler, 12, curve=score)
    pickle.loads(pickle.dumps(searcher))
    assert os.listdir(tmp_path) == []
    out, err = capfd.readouterr()
    assert out == "" and "dehb" not in err.lower()


def test_the_scheduler_stops_nothing_for_a_searcher_that_gives_no_budget():
    spec = parse_spec({"name": "s", "data": {"dataset": "digits"},
                       "budget": {"trials": 4, "max_epochs": 3}, "scheduler": {"type": "fifo"},
                       "space": SPACE})
    ledger = Ledger(3, "fifo")
    searcher = build_searcher(spec, ledger)
    searcher.suggest("t0")
    assert searcher.epochs_for("t0") is None and searcher.epochs_for("unknown") is None
    stopper = EpochsStopper()
    controller = SimpleNamespace(search_alg=SimpleNamespace(searcher=searcher))
    assert epochs_for(controller, "t0") is None
    assert stopper.on_trial_result(controller, FakeTrial("t0"), {"epoch": 3}) == \
        TrialScheduler.CONTINUE
    assert epochs_for(SimpleNamespace(), "t0") is None  # no searcher at all


def test_a_trial_dehb_did_not_ask_for_is_sampled_at_random():
    """Before `fit` (no optimizer) or for a parameter outside its space, the sampler draws at
    random instead of failing the trial."""
    study = optuna.create_study(sampler=DEHBSampler(seed=0), direction="maximize")
    trial = study.ask()
    assert 1e-4 <= trial.suggest_float("lr", 1e-4, 1e-1, log=True) <= 1e-1
    study.tell(trial, 0.5)
    assert study.sampler.epochs_of(trial.number) is None


def test_budgets_match_the_dehb_package_over_a_grid_of_settings():
    for reduction in (2, 2.5, 3, 4):
        for min_epochs in (1, 2, 3):
            for max_epochs in range(min_epochs + 1, 40, 3):
                sampler = DEHBSampler(seed=0)
                sampler.fit(["lr"], min_epochs, max_epochs, reduction)
                assert registry.dehb_fidelities(min_epochs, max_epochs, reduction) == \
                    pytest.approx(list(sampler.optimizer.fidelities)), \
                    (reduction, min_epochs, max_epochs)
                assert np.all(np.diff(registry.dehb_budgets(min_epochs, max_epochs,
                                                            reduction)) >= 0)


def test_a_search_whose_trials_all_diverge_goes_on():
    """DEHB counts a configuration told inf as never evaluated, and raises IndexError at its
    next promotion when none of a budget was: such trials are told the worst finite value."""
    searcher, scheduler = parts(dehb_spec())
    ran = run(searcher, scheduler, 20, curve=lambda config, epoch: math.nan)
    assert len(ran) == 20 and all(e == 1 for _, e in ran.values())  # each diverged at once
    assert set(searcher._ot_study.sampler.epochs.values()) == {1, 3, 9}  # DEHB promoted some
    assert {h[2] for h in searcher._ot_study.sampler.optimizer.history} == {WORST}
