"""Early stopping with several objectives (MO-ASHA): the rung rule by hand, and the stopping and
promotion schedulers a launch builds for a list `objective`, run on scripted results (no Ray
runtime), their state through JSON as the record keeps it."""

from __future__ import annotations

import json
import math
import random

import pytest
from ray.tune.schedulers import TrialScheduler
from trials import FakeTrial

from search.engine import pareto
from search.engine.ledger import Ledger
from search.engine.moasha import MOASHA, on_rung
from search.engine.promotion import PromotionASHA
from search.engine.schedulers import build_scheduler
from search.spec import schedulers as registry

GO, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
OBJECTIVES = (("val_acc", "max"), ("params", "min"))


@pytest.mark.parametrize("recorded, point, decision", [
    ({}, (0.1, -9.0), GO),  # the first at a rung always goes on
    # 2 at the rung, eta 3: only the top ceil(2/3) = 1 goes on
    ({"a": (0.5, -5.0)}, (0.4, -6.0), STOP),  # dominated by a
    ({"a": (0.5, -5.0)}, (0.6, -4.0), GO),  # dominates a
    # neither dominates: both on the front; the crowding tie-break makes both ends infinite,
    # so the order recorded decides: a first
    ({"a": (0.5, -5.0)}, (0.6, -9.0), STOP),
    # 4 at the rung: the top 2 go on; the new point is on the front with a
    ({"a": (0.5, -5.0), "b": (0.3, -6.0), "c": (0.2, -7.0)}, (0.4, -4.0), GO),
    ({"a": (0.5, -5.0), "b": (0.3, -6.0), "c": (0.2, -7.0)}, (0.1, -8.0), STOP),
    # a trial without a value is worst in that objective
    ({"a": (0.5, -5.0)}, (-math.inf, -1.0), STOP),
])
def test_a_trial_goes_on_only_among_the_rungs_top_share_by_pareto_order(recorded, point,
                                                                        decision):
    rungs = [(3, {}), (1, dict(recorded))]  # highest first, as Ray keeps them
    assert on_rung(rungs, 3, "new", 1, point) == decision
    assert rungs[1][1]["new"] == point and rungs[0][1] == {}  # recorded at the rung it reached


def test_a_trial_is_compared_once_per_rung():
    rungs = [(1, {"a": (0.9, -1.0)})]
    assert on_rung(rungs, 3, "b", 1, (0.1, -9.0)) == STOP
    assert on_rung(rungs, 3, "b", 2, (0.1, -9.0)) == GO  # no rung at 2: nothing to compare


@pytest.mark.parametrize("rung, best", [
    ({"a": 1.0, "b": 3.0, "c": 2.0}, ["b", "c", "a"]),  # one objective: by value
    ({"a": (1.0, 1.0), "b": (2.0, 2.0), "c": (3.0, 0.0)}, ["b", "c", "a"]),  # a is dominated
    ({"a": [1.0, 1.0], "b": [2.0, 2.0]}, ["b", "a"]),  # as read back from JSON
])
def test_a_rung_is_ranked_by_value_or_by_pareto_order(rung, best):
    assert pareto.best_first(rung) == best


@pytest.mark.parametrize("result, objectives, expected", [
    ({"val_acc": 0.5}, [("val_acc", "max")], 0.5),
    ({"val_loss": 0.5}, [("val_loss", "min")], -0.5),
    ({"val_acc": 0.5, "params": 10.0}, OBJECTIVES, (0.5, -10.0)),
    ({"val_acc": math.nan, "params": 10.0}, OBJECTIVES, (-math.inf, -10.0)),
    ({"val_acc": 0.5}, OBJECTIVES, (0.5, -math.inf)),
])
def test_a_results_score_is_signed_so_that_larger_is_better(result, objectives, expected):
    assert pareto.score(result, objectives) == expected


def script(n_trials=12, max_epochs=9, seed=0):
    """Each trial: per epoch a random accuracy, and a fixed parameter count (static)."""
    rng = random.Random(seed)
    return [(f"t{i}", [rng.random() for _ in range(max_epochs)], rng.choice([1e5, 3e5, 9e5]))
            for i in range(n_trials)]


def moasha(spec, max_epochs=9):
    built = build_scheduler(spec, max_epochs, Ledger(max_epochs, stop_tag=spec.type), OBJECTIVES)
    built.set_search_properties("val_acc", "max")
    return built


def run(sched, events, decisions):
    for trial_id, accs, params in events:
        sched.on_trial_add(None, FakeTrial(trial_id))
        for epoch, acc in enumerate(accs, 1):
            result = {"epoch": epoch, "val_acc": acc, "params": params}
            decision = sched.on_trial_result(None, FakeTrial(trial_id), result)
            decisions.append((trial_id, epoch, decision))
            if decision == STOP:
                break
        else:
            sched.on_trial_complete(None, FakeTrial(trial_id), result)


def test_stopping_asha_with_several_objectives_is_mo_asha():
    spec = registry.ASHA(grace_period=1, reduction_factor=3)
    built = moasha(spec)
    assert isinstance(built, MOASHA) and built.objectives == list(OBJECTIVES)
    one = build_scheduler(spec, 9, Ledger(9, stop_tag="asha"))
    assert not isinstance(one, MOASHA)  # one objective: Ray's ASHA, exactly as before


def test_mo_asha_stops_a_trial_a_rung_mate_dominates_and_keeps_a_trade_off():
    spec = registry.ASHA(grace_period=1, reduction_factor=2)
    events = [("big", [0.9] * 9, 9e5), ("worse", [0.5] * 9, 9e5), ("small", [0.6] * 9, 1e5)]
    decisions: list = []
    run(moasha(spec), events, decisions)
    first_rung = {t: d for t, e, d in decisions if e == 1}
    # `worse` is dominated by `big` (less accurate, as large); `small` is less accurate than
    # `big` but smaller: on the front with it, among the top ceil(3 / 2)
    assert first_rung == {"big": GO, "worse": STOP, "small": GO}
    # Ray's ASHA on accuracy alone stops `small` there (0.6 is below the median of 0.9, 0.5)
    alone = build_scheduler(spec, 9, Ledger(9, stop_tag="asha"))
    alone.set_search_properties("val_acc", "max")
    single: list = []
    run(alone, events, single)
    assert {t: d for t, e, d in single if e == 1}["small"] == STOP


@pytest.mark.parametrize("cut", [1, 5, 9])
def test_a_restored_mo_asha_stops_exactly_the_trials_an_uninterrupted_one_stops(cut):
    spec = registry.ASHA(grace_period=1, reduction_factor=3)
    events = script()
    alone: list = []
    run(moasha(spec), events, alone)
    first, resumed = moasha(spec), []
    run(first, events[:cut], resumed)
    saved = json.loads(json.dumps(first.state()))
    assert all(isinstance(v, list) for _, rung in saved["rungs"][0] for v in rung.values())
    second = moasha(spec)
    second.load_state(saved)
    run(second, events[cut:], resumed)
    assert resumed == alone
    assert any(d == STOP for _, _, d in alone)


def test_promotion_asha_with_several_objectives_ranks_its_rungs_by_pareto_order():
    spec = registry.PromotionASHA(grace_period=1, reduction_factor=3)
    sched = moasha(spec, max_epochs=3)
    assert isinstance(sched, PromotionASHA) and sched.ranked_by() == list(OBJECTIVES)
    for trial_id, acc, params in [("big", 0.9, 9e5), ("worse", 0.5, 9e5), ("small", 0.6, 1e5)]:
        sched.on_trial_result(None, FakeTrial(trial_id), {"epoch": 1, "val_acc": acc,
                                                          "params": params})
    assert sched.rungs[0] == {"big": (0.9, -9e5), "worse": (0.5, -9e5), "small": (0.6, -1e5)}
    assert pareto.best_first(sched.rungs[0])[-1] == "worse"
    saved = json.loads(json.dumps(sched.promotion_state()))
    again = moasha(spec, max_epochs=3)
    again.load_promotion_state(saved)
    assert again.rungs == sched.rungs


SEVERAL = sorted(t for t, e in registry.SCHEDULERS.items() if e.several_objectives)


def test_the_schedulers_that_take_several_objectives():
    assert SEVERAL == ["asha", "fifo", "promotion_asha"]


@pytest.mark.parametrize("entry", SEVERAL)
def test_every_scheduler_that_takes_several_objectives_builds_with_them(entry):
    section = registry.SCHEDULERS[entry]()
    decided = []
    for objectives in (OBJECTIVES, ()):  # a lone first trial: as with its first objective alone
        built = build_scheduler(section, 9, Ledger(9, stop_tag=entry), objectives)
        built.set_search_properties("val_acc", "max")
        built.on_trial_add(None, FakeTrial("a"))
        decided.append(built.on_trial_result(None, FakeTrial("a"), {
            "epoch": 1, "val_acc": 0.5, "params": 1e5}))
    assert decided[0] == decided[1]
