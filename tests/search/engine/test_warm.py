"""Warm start: earlier trials made points of the new space (a table of the pure rule), told to a
real Optuna study as the searcher would have told them, the line that says how many and why, and
a real TPE searcher that models from its first proposal on what it was told."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState
from trials import trial_record

from search.engine import compat, warm
from search.engine.ledger import Ledger
from search.engine.samplers import build_searcher
from search.spec.outcome import Outcome
from search.experiment.results import Results, TrialRecord
from search.spec.model import parse_spec

MILESTONES = [[0.5, 0.75], [0.3, 0.6, 0.9]]


def spec_of(space: dict, **changes):
    return parse_spec({"name": "warm-test", "data": {"dataset": "digits"},
                       "budget": {"trials": 8, "max_epochs": 3},
                       "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 10},
                       "space": space, **changes})


SPACE = {"lr": {"float": [0.01, 0.5], "log": True},
         "residual": {"choice": ["add", "scaled"]},
         "residual_scale": {"float": [0.1, 1.0], "step": 0.1, "when": {"residual": "scaled"}},
         "width": {"choice": [0.5, 1.0]},
         "milestones": {"choice": MILESTONES}}


@pytest.fixture(scope="module")
def space():
    return spec_of(SPACE).space


BASE = {"lr": 0.1, "residual": "add", "width": 0.5, "milestones": [0.5, 0.75]}


@pytest.mark.parametrize("params, point, dropped, clipped, why", [
    (BASE, BASE, [], [], ""),
    # a parameter the new space lacks is dropped, the rest told
    ({**BASE, "gamma": 0.3}, BASE, ["gamma"], [], ""),
    # a parameter whose condition no longer holds is dropped too
    ({**BASE, "residual_scale": 0.5}, BASE, ["residual_scale"], [], ""),
    # outside the new range: clipped to it
    ({**BASE, "lr": 0.9}, {**BASE, "lr": 0.5}, [], ["lr"], ""),
    ({**BASE, "lr": 0.001}, {**BASE, "lr": 0.01}, [], ["lr"], ""),
    # clipped onto the step's grid as well
    ({**BASE, "residual": "scaled", "residual_scale": 1.7},
     {**BASE, "residual": "scaled", "residual_scale": 1.0}, [], ["residual_scale"], ""),
    ({**BASE, "residual": "scaled", "residual_scale": 0.33},
     {**BASE, "residual": "scaled", "residual_scale": pytest.approx(0.3)}, [],
     ["residual_scale"], ""),
    # a list-valued choice is compared as a value
    ({**BASE, "milestones": [0.3, 0.6, 0.9]}, {**BASE, "milestones": [0.3, 0.6, 0.9]}, [], [],
     ""),
    # not a point: a choice the space does not offer, a sampled parameter missing, not a number
    ({**BASE, "residual": "normalized"}, None, [], [], "have a residual the space does not offer"),
    ({**BASE, "width": 2.0}, None, [], [], "have a width the space does not offer"),
    ({"lr": 0.1, "residual": "add", "milestones": [0.5, 0.75]}, None, [], [], "lack width"),
    ({**BASE, "residual": "scaled"}, None, [], [], "lack residual_scale"),
    ({**BASE, "lr": "fast"}, None, [], [], "have a lr that is not a number"),
    ({**BASE, "lr": math.nan}, None, [], [], "have a lr that is not a number"),
])
def test_adapted(space, params, point, dropped, clipped, why):
    found = warm.adapted(space, params)
    assert found.point == point
    assert (found.dropped, found.clipped, found.why) == (dropped, clipped, why)


def record(trial_id: str, values: list, outcome: Outcome, params: dict,
           status: str = "TERMINATED") -> TrialRecord:
    return trial_record(trial_id, values, outcome, params=params, status=status)


BEST = {**BASE, "lr": 0.2}
EARLIER = Results("val_acc", "max", [  # best first, as the record lists them
    record("best", [0.5, 0.8, 0.9], Outcome.COMPLETED, BEST),
    record("clip", [0.4, 0.6, 0.7], Outcome.COMPLETED, {**BASE, "lr": 0.9, "gamma": 0.1}),
    record("stop", [0.3], Outcome.STOPPED, BASE),
    record("odd", [0.2], Outcome.STOPPED, {**BASE, "residual": "normalized"}),
    record("run", [0.1], Outcome.KILLED, BASE, status="RUNNING"),
    record("fail", [], Outcome.FAILED, BASE, status="ERROR"),
])


def test_knowledge_tells_what_the_searcher_would_have_told_and_says_why_not(space):
    known = warm.knowledge(space, "val_acc", "max", [warm.Earlier("runs/a", EARLIER)])
    by_id = {t.user_attrs["trial_id"]: t for t in known.trials}
    assert sorted(by_id) == ["best", "clip", "stop"]
    assert by_id["best"].state == TrialState.COMPLETE and by_id["best"].value == 0.9
    assert by_id["best"].params["lr"] == 0.2
    assert by_id["clip"].params["lr"] == 0.5 and "gamma" not in by_id["clip"].params
    stop = by_id["stop"]
    assert stop.state == TrialState.PRUNED and stop.intermediate_values == {1: 0.3}
    # a list-valued choice is stored by position, as the live searcher stores it
    assert by_id["best"].params["milestones"] == 0
    assert {t.user_attrs["warm_start"] for t in known.trials} == {"runs/a"}
    assert known.text == (
        "warm start: told 3 of 6 earlier trials (2 completed, 1 stopped) from runs/a; not told: "
        "1 have a residual the space does not offer, 1 were unfinished, 1 failed; dropped (not "
        "in this space): gamma in 1; clipped into range: lr in 1")
    assert known.record() == {"from": ["runs/a"], "told": 3, "of": 6, "completed": 2,
                              "stopped": 1, "enqueued": 0, "text": known.text}


def test_top_keeps_the_best_told_trials_of_each_experiment(space):
    known = warm.knowledge(space, "val_acc", "max",
                           [warm.Earlier("a", EARLIER), warm.Earlier("b", EARLIER)], top=1)
    assert [(t.user_attrs["warm_start"], t.user_attrs["trial_id"]) for t in known.trials] == [
        ("a", "best"), ("b", "best")]
    assert "not told: 10 were beyond the top 1" in known.text


def test_another_objective_is_not_told(space):
    other = Results("val_loss", "min", EARLIER.trials)
    known = warm.knowledge(space, "val_acc", "max", [warm.Earlier("loss", other)])
    assert known.trials == []
    assert "not told: 6 optimised min val_loss" in known.text


def test_a_warm_tpe_searcher_models_from_its_first_proposal():
    """Told 12 completed trials whose value rises with lr, TPE's first proposal is a modelled
    one (it has n_startup_trials=10 behind it) near the best, where a cold one samples at
    random; the queued configuration comes first of all."""
    spec = spec_of({"lr": {"float": [0.01, 1.0], "log": True}},
                   warm_start={"enqueue": [{"lr": 0.02}]})
    lrs = [0.01 * 1.4 ** i for i in range(12)]
    earlier = Results("val_acc", "max", [
        record(f"t{i}", [lr / 2], Outcome.COMPLETED, {"lr": lr})
        for i, lr in enumerate(sorted(lrs, reverse=True))])
    known = warm.knowledge(spec.space, "val_acc", "max", [warm.Earlier("e", earlier)],
                           enqueue=spec.warm_start.enqueue)
    searcher = build_searcher(spec, Ledger(3, stop_tag=spec.scheduler.stop_tag), known)
    study = compat.optuna_study(searcher)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 12
    assert study.best_params == {"lr": pytest.approx(max(lrs))}
    assert searcher.suggest("first") == {"lr": 0.02}  # the queue first
    proposals = [searcher.suggest(f"t{i}")["lr"] for i in range(5)]
    assert min(proposals) > 0.05, proposals  # TPE's good side: the high learning rates


def test_told_trials_are_what_optuna_itself_would_hold(space):
    """create_trial validates: a COMPLETE trial has its value, distributions contain params."""
    known = warm.knowledge(space, "val_acc", "max", [warm.Earlier("a", EARLIER)])
    study = optuna.create_study(direction="maximize")
    warm.tell(study, space, known)
    assert study.best_trial.user_attrs["trial_id"] == "best"


@pytest.mark.parametrize("sampler", ["tpe", "gp", "cmaes", "random", "qmc"])
def test_every_sampler_takes_a_warm_start(sampler):
    """Told trials and a queue reach every sampler's study; the queue is proposed first and
    the next proposal is a point of the space."""
    spec = spec_of({"lr": {"float": [0.01, 1.0], "log": True},
                    "residual": {"choice": ["add", "scaled"]}},
                   sampler={"type": sampler, "seed": 0},
                   warm_start={"enqueue": [{"lr": 0.3, "residual": "scaled"}]})
    earlier = Results("val_acc", "max", [
        record(f"t{i}", [0.1 * i], Outcome.COMPLETED,
               {"lr": 0.01 * 1.5 ** i, "residual": ["add", "scaled"][i % 2]})
        for i in range(8)])
    known = warm.knowledge(spec.space, "val_acc", "max", [warm.Earlier("e", earlier)],
                           enqueue=spec.warm_start.enqueue)
    searcher = build_searcher(spec, Ledger(3, stop_tag=spec.scheduler.stop_tag), known)
    assert len(compat.optuna_study(searcher).trials) == 9  # 8 told, 1 queued
    assert searcher.suggest("a") == {"lr": 0.3, "residual": "scaled"}
    nxt = searcher.suggest("b")
    assert 0.01 <= nxt["lr"] <= 1.0 and nxt["residual"] in ("add", "scaled")


def test_queue_best_queues_the_best_completed_points_of_each_after_the_enqueued():
    """`queue_best`: each earlier experiment's best completed trials, best first, as points of
    the new space (clipped like a told trial), each configuration once (the enqueued one and a
    second experiment's same best are not queued again), named by their source."""
    space = spec_of(SPACE).space
    other = Results("val_acc", "max", [
        record("same", [0.9], Outcome.COMPLETED, BEST),  # b's best is a's best: queued once
        record("own", [0.8], Outcome.COMPLETED, {**BASE, "lr": 0.05})])
    known = warm.knowledge(space, "val_acc", "max",
                           [warm.Earlier("a", EARLIER), warm.Earlier("b", other)],
                           enqueue=[BASE], queue_best=2)
    # a: "best" then "clip" (lr 0.9 clipped to 0.5); "stop" is stopped, never queued
    assert known.enqueue == [BASE, BEST, {**BASE, "lr": 0.5}, {**BASE, "lr": 0.05}]
    assert known.queued_from == ["enqueue", "a", "a", "b"]
    assert known.text.endswith("4 configurations queued first (3 earlier best)")
    assert known.record()["queued_best"] == ["a", "a", "b"]
    assert known.record()["enqueued"] == 4
    study = optuna.create_study(direction="maximize")
    warm.tell(study, space, known)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["warm_start"] for t in waiting] == ["enqueue", "a", "a", "b"]


@pytest.mark.parametrize("n, expected", [
    (1, [BEST]),
    (3, [BEST, {**BASE, "lr": 0.5}]),  # only two completed trials are points of the space
])
def test_best_points_takes_only_completed_trials_best_first(space, n, expected):
    assert warm.best_points(EARLIER, space, n) == expected


def test_best_points_passes_over_what_lies_outside_the_narrowed_space(space):
    narrowed = spec_of({**SPACE, "lr": {"float": [0.01, 0.3], "log": True}}).space
    assert warm.best_points(EARLIER, space, 2, narrowed) == [BEST]


def test_queue_best_tells_nothing_of_another_objective(space):
    other = Results("val_loss", "min", EARLIER.trials)
    known = warm.knowledge(space, "val_acc", "max", [warm.Earlier("loss", other)],
                           queue_best=1)
    assert known.enqueue == [] and "queued" not in known.text
