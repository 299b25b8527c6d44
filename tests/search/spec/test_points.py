"""What a space can produce: distinct points (with conditions), the points that show every value,
and the rule that refuses a search with more trials than distinct configurations."""

import pytest

from search.spec.model import parse_spec, room_problem
from search.spec.points import covering_points, distinct_points, size
from search.spec.problems import SpecError

BASE = {"name": "x", "data": {"dataset": "digits"}, "budget": {"trials": 1, "max_epochs": 2}}


def space(raw: dict) -> dict:
    return parse_spec({**BASE, "space": raw}).space


@pytest.mark.parametrize("raw, expected", [
    ({}, 1),
    ({"block": {"choice": ["basic", "preact"]}}, 2),
    ({"block": {"choice": ["basic", "preact"]}, "depth": {"choice": [20, 32, 44]}}, 6),
    ({"width": {"int": [1, 4]}}, 4),
    ({"width": {"int": [1, 7], "step": 3}}, 3),  # 1, 4, 7
    ({"width": {"int": [1, 8], "log": True}}, 8),  # Optuna ignores the step on a log scale
    ({"lr": {"float": [0.1, 0.5], "step": 0.1}}, 5),
    ({"lr": {"float": [0.1, 0.5]}}, None),  # continuous
    # A conditional parameter counts only where it exists: step x 3 gammas + cosine + onecycle.
    ({"schedule": {"choice": ["step", "cosine", "onecycle"]},
      "gamma": {"choice": [0.1, 0.2, 0.5], "when": {"schedule": "step"}}}, 5),
    ({"schedule": {"choice": ["step", "cosine"]},
      "gamma": {"float": [0.1, 0.5], "when": {"schedule": "step"}}}, None),
    ({"milestones": {"choice": [[0.5, 0.75], [0.3, 0.6, 0.9]]}}, 2),
])
def test_distinct_points(raw, expected):
    assert distinct_points(space(raw)) == expected


def test_counting_stops_at_the_cap():
    raw = {f"f{i}": {"choice": [0.1, 0.2, 0.3, 0.4]} for i in range(3)}
    assert distinct_points(space({"lr": raw["f0"], "momentum": raw["f1"],
                                  "weight_decay": raw["f2"]}), cap=50) == 50


def test_size_of_each_kind():
    s = space({"lr": {"float": [0.1, 0.3], "step": 0.1}, "width": {"int": [2, 6], "step": 2},
               "block": {"choice": ["basic"]}})
    assert (size(s["lr"]), size(s["width"]), size(s["block"])) == (3, 3, 1)
    # a range a warm start narrowed to one value (search/engine/narrow.py) is one point, also
    # when continuous or on a log scale
    one = {"lr": {"float": [0.1, 0.5], "log": True}, "momentum": {"float": [0.5, 0.9]},
           "width": {"int": [1, 8], "log": True}}
    for name, param in space(one).items():
        assert size(param.model_copy(update={"bounds": (param.high, param.high)})) == 1, name


def test_covering_points_show_every_choice_and_both_ends_with_conditions_met():
    s = space({"schedule": {"choice": ["step", "cosine"]},
               "gamma": {"float": [0.1, 0.5], "when": {"schedule": "step"}},
               "lr": {"float": [0.01, 1.0], "log": True}})
    seen = {(name, value): point for name, value, point in covering_points(s)}
    assert set(seen) == {("schedule", "step"), ("schedule", "cosine"), ("gamma", 0.1),
                         ("gamma", 0.5), ("lr", 0.01), ("lr", 1.0)}
    assert seen[("gamma", 0.5)] == {"schedule": "step", "gamma": 0.5, "lr": 0.01}
    assert "gamma" not in seen[("schedule", "cosine")]  # it does not exist there


@pytest.mark.parametrize("trials, points, repeat, refused", [
    (1, 1, False, False),  # one training run of the fixed config: fine
    (4, 1, False, True),
    (4, 1, True, False),  # a repeat study, on purpose
    (4, 4, False, False),
    (5, 4, False, True),
    (1000, None, False, False),  # continuous: no shortage of points
])
def test_room_for_the_trials(trials, points, repeat, refused):
    assert (room_problem(trials, points, repeat) is not None) == refused


@pytest.mark.parametrize("raw, fragment", [
    (None, "no parameter of the space varies"),
    ({}, "no parameter of the space varies"),
    ({"lr": {"choice": [0.1]}}, "no parameter of the space varies"),
    ({"lr": {"choice": [0.1, 0.2]}}, "only 2 distinct configurations"),
])
def test_a_space_smaller_than_the_budget_is_refused_naming_trials(raw, fragment):
    spec = {**BASE, "budget": {"trials": 4, "max_epochs": 2}}
    if raw is not None:
        spec["space"] = raw
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    (problem,) = err.value.problems
    assert problem.loc == "budget.trials" and problem.value == 4
    assert fragment in problem.message and "budget.repeat: true" in problem.message
    spec["budget"] = {**spec["budget"], "repeat": True}
    assert parse_spec(spec).budget.repeat
