"""Picking the winner of a search of several objectives: the rule's grammar and its errors, the
trial a rule picks, and the front's knee, by hand."""

from __future__ import annotations

import math

import pytest

from search.winner.pick import Rule, by_rule, knee, parse

# A front of accuracy against parameters: a is the most accurate and the largest, c the smallest.
FRONT = {"a": {"val_acc": 0.95, "params": 9e5, "latency_ms": 3.0},
         "b": {"val_acc": 0.93, "params": 3e5, "latency_ms": 2.0},
         "c": {"val_acc": 0.80, "params": 1e5, "latency_ms": 1.0}}
TWO = (("val_acc", "max"), ("params", "min"))


@pytest.mark.parametrize("text, rule", [
    ("max val_acc", Rule("max", "val_acc")),
    ("  min params  ", Rule("min", "params")),
    ("max val_acc where params < 1e6", Rule("max", "val_acc", (("params", "<", 1e6),))),
    ("max val_acc where params<=3e5 and latency_ms >= 1.5",
     Rule("max", "val_acc", (("params", "<=", 3e5), ("latency_ms", ">=", 1.5)))),
])
def test_a_rule_reads_as_written(text, rule):
    assert parse(text) == rule
    assert parse(str(rule)) == rule  # and is written back the same


@pytest.mark.parametrize("text, fragments", [
    ("val_acc", ["'val_acc'", "max|min METRIC"]),
    ("maximise val_acc", ["max|min METRIC"]),
    ("max val_acc params", ["max|min METRIC"]),
    ("max val_ac", ["'val_ac' is no metric", "did you mean 'val_acc'"]),
    ("max val_acc where parms < 1e6", ["'parms' is no metric", "did you mean 'params'"]),
    ("max val_acc where params = 1e6", ["'params = 1e6' is not METRIC OP NUMBER"]),
    ("max val_acc where params < many", ["'many'", "is not a number"]),
    ("max val_acc where", ["max|min METRIC"]),
])
def test_a_bad_rule_is_refused_naming_what_breaks_the_grammar(text, fragments):
    with pytest.raises(ValueError) as refused:
        parse(text)
    for fragment in fragments:
        assert fragment in str(refused.value), str(refused.value)


@pytest.mark.parametrize("text, picked", [
    ("max val_acc", "a"),
    ("min params", "c"),
    ("max val_acc where params < 5e5", "b"),
    ("max val_acc where params < 5e5 and latency_ms < 1.5", "c"),
    ("min latency_ms where val_acc >= 0.9", "b"),
    ("max val_acc where params < 1e4", None),  # nothing meets it
])
def test_a_rule_picks_the_best_candidate_that_meets_its_conditions(text, picked):
    assert by_rule(FRONT, parse(text)) == picked


def test_a_candidate_without_a_value_never_meets_a_condition():
    front = {**FRONT, "d": {"val_acc": 0.99, "params": None, "latency_ms": 1.0}}
    assert by_rule(front, parse("max val_acc where params < 1e6")) == "a"
    assert by_rule(front, parse("max val_acc")) == "d"


@pytest.mark.parametrize("front, objectives, expected", [
    # scaled: a (0, 1), b (0.13, 0.25), c (1, 0): b is closest to the ideal corner
    (FRONT, TWO, "b"),
    ({"only": FRONT["a"]}, TWO, "only"),  # one trial is its own knee
    # two objectives that agree: the best in both
    ({"x": {"val_acc": 0.9, "params": 1.0}, "y": {"val_acc": 0.8, "params": 2.0}}, TWO, "x"),
    ({}, TWO, None),
    ({"n": {"val_acc": math.nan, "params": 1.0}}, TWO, None),  # no value: no knee
])
def test_the_knee_is_the_trial_closest_to_the_ideal_point_of_the_front(front, objectives,
                                                                       expected):
    assert knee(front, objectives) == expected
