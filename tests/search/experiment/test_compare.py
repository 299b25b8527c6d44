"""The winners' config diff of `compare`: only the fields that differ, each as [a, b]."""

from __future__ import annotations

import pytest

from search.experiment.compare import config_diff

CASES = {
    "same": ({"lr": 0.1, "depth": 20}, {"depth": 20, "lr": 0.1}, {}),
    "one differs": ({"lr": 0.1, "depth": 20}, {"lr": 0.3, "depth": 20}, {"lr": [0.1, 0.3]}),
    "a list differs": ({"milestones": [0.5, 0.75]}, {"milestones": [0.3, 0.6]},
                       {"milestones": [[0.5, 0.75], [0.3, 0.6]]}),
    "one lacks a field": ({"lr": 0.1}, {"lr": 0.1, "tta": True}, {"tta": [None, True]}),
    "null against a value": ({"block": None}, {"block": "preact"}, {"block": [None, "preact"]}),
    "no winner in a": (None, {"lr": 0.1}, {}),
    "no winner in b": ({"lr": 0.1}, {}, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_config_diff(case):
    a, b, expected = CASES[case]
    assert config_diff(a, b) == expected


def test_the_order_is_a_then_b():
    assert list(config_diff({"z": 1, "a": 1}, {"a": 2, "m": 3, "z": 2})) == ["z", "a", "m"]
