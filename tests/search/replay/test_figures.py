"""The figures of search efficiency: epochs to the target, the anytime best, quantiles over
seeds where "not reached" is worse than any number, and the seed-by-seed comparison."""

from __future__ import annotations

import math

import pytest

from search.replay import figures

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("value, mode, expected", [
    (0.7, "max", 0.7), (0.7, "min", -0.7), (-2, "max", -2), (0, "min", 0),
    (NAN, "max", -INF), (INF, "max", -INF), (-INF, "min", -INF), (None, "min", -INF),
    ("0.5", "max", -INF), (True, "max", -INF),
])
def test_score(value, mode, expected):
    assert figures.score(value, mode) == expected


def test_score_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="'up'"):
        figures.score(1.0, "up")


@pytest.mark.parametrize("values, target, mode, expected", [
    ([0.1, 0.5, 0.9], 0.5, "max", 2),  # at least as good: equal counts
    ([0.1, 0.4, 0.9], 0.5, "max", 3),
    ([0.6, 0.1], 0.5, "max", 1),
    ([0.1, 0.4, 0.45], 0.5, "max", None),
    ([0.9, 0.5, 0.1], 0.5, "min", 2),  # min: lower is better
    ([0.9, 0.6, 0.1], 0.5, "min", 3),
    ([0.1, 0.9], 0.5, "min", 1),
    ([0.6, 0.7, 0.9], 0.5, "min", None),
    ([NAN, INF, 0.6], 0.5, "max", 3),  # non-finite values never reach
    ([NAN, -INF, None, 0.2], 0.5, "min", 4),
    ([INF, INF], 0.5, "max", None),
    ([-INF], 0.5, "min", None),
    ([], 0.5, "max", None),
    # a target that is no number (a baseline with no finite value): the first finite value
    ([NAN, INF, 0.1], None, "max", 3),
    ([NAN, -INF, 0.9], NAN, "min", 3),
    ([NAN, None], None, "max", None),
])
def test_epochs_to_target(values, target, mode, expected):
    assert figures.epochs_to_target(values, target, mode) == expected
    assert figures.epochs_to_target(iter(values), target, mode) == expected  # any iterable


@pytest.mark.parametrize("values, mode, expected", [
    ([0.2, NAN, 0.7, 0.5], "max", 0.7),
    ([0.2, NAN, 0.7, 0.5], "min", 0.2),
    ([NAN, INF, None], "max", None),
    ([], "min", None),
])
def test_best(values, mode, expected):
    assert figures.best(values, mode) == expected


@pytest.mark.parametrize("values, budget, mode, expected", [
    ([NAN, 0.3, 0.2, 0.5], 6, "max", [None, 0.3, 0.3, 0.5, 0.5, 0.5]),
    ([NAN, 0.3, 0.2, 0.5], 6, "min", [None, 0.3, 0.2, 0.2, 0.2, 0.2]),
    ([0.4, INF, 0.1, 0.9], 3, "max", [0.4, 0.4, 0.4]),  # cut at the budget; inf never best
    ([0.4, -INF, 0.5], 3, "min", [0.4, 0.4, 0.4]),
    ([], 2, "max", [None, None]),
    ([NAN, None], 3, "max", [None, None, None]),
    ([0.5], 0, "max", []),
])
def test_anytime(values, budget, mode, expected):
    assert figures.anytime(values, budget, mode) == expected


def test_anytime_never_gets_worse():
    values = [0.3, 0.1, 0.6, 0.2, NAN, 0.6, 0.8, 0.0]
    for mode in ("max", "min"):
        curve = figures.anytime(values, 12, mode)
        scores = [figures.score(v, mode) for v in curve]
        assert scores == sorted(scores) and len(curve) == 12


@pytest.mark.parametrize("values, target, budget, mode, expected", [
    ([0.1, 0.5, 0.9], 0.5, 10, "max",
     {"epochs_to_target": 2, "ratio": 0.2, "best": 0.9, "epochs": 3}),
    ([0.9, 0.7], 0.5, 4, "min",
     {"epochs_to_target": None, "ratio": None, "best": 0.7, "epochs": 2}),
    ([], 0.5, 4, "max",
     {"epochs_to_target": None, "ratio": None, "best": None, "epochs": 0}),
])
def test_seed_figures(values, target, budget, mode, expected):
    assert figures.seed_figures(values, target, budget, mode) == expected


@pytest.mark.parametrize("values, q, expected", [
    ([1, 2, 3, None], 0.5, 2.5),
    ([1, None, None], 0.5, None),  # the median is a None
    ([1, 2, None], 0.5, 2.0),
    ([4, 1, 2, 3], 0.25, 1.75),  # unsorted input
    ([4, 1, 2, 3], 0.75, 3.25),
    ([4, 1, 2, 3], 0.0, 1.0),
    ([4, 1, 2, 3], 1.0, 4.0),
    ([1, 2, 3, None], 1.0, None),
    ([1, 2, None, None], 0.5, None),  # between a number and a None: not reached
    ([None, 3, None, 1, 2], 0.25, 2.0),
    ([None, None], 0.5, None),
    ([7], 0.5, 7.0),
    ([], 0.5, None),
])
def test_quantile(values, q, expected):
    assert figures.quantile(values, q) == expected


def test_quantile_counts_none_as_worse_than_any_number():
    # Adding a None to a sample can only move a quantile up (towards "worse"), never down.
    sample = [5.0, 1.0, 9.0, 3.0]
    for q in (0.25, 0.5, 0.75):
        with_none = figures.quantile(sample + [None], q)
        assert with_none is None or with_none >= figures.quantile(sample, q)


@pytest.mark.parametrize("values, expected", [
    ([1, 2, 3, None], {"median": 2.5, "q25": 1.75, "q75": None, "reached": 3, "of": 4}),
    ([4, 1, 2, 3], {"median": 2.5, "q25": 1.75, "q75": 3.25, "reached": 4, "of": 4}),
    ([None, None, 1], {"median": None, "q25": None, "q75": None, "reached": 1, "of": 3}),
    ([], {"median": None, "q25": None, "q75": None, "reached": 0, "of": 0}),
])
def test_spread(values, expected):
    assert figures.spread(values) == expected


@pytest.mark.parametrize("values, expected", [
    ([3.0, None, 1.0, 2.0], 2.0), ([None, None], None), ([1.0, 4.0], 2.5),
])
def test_median_best(values, expected):
    assert figures.median_best(values) == expected


def seed(reached, best=0.9) -> dict:
    return {"epochs_to_target": reached, "best": best}


@pytest.mark.parametrize("ours, other, mode, verdict", [
    (seed(5), seed(8), "max", "better"),  # fewer epochs first
    (seed(8), seed(5), "max", "worse"),
    (seed(5, best=0.5), seed(8, best=0.99), "max", "better"),  # epochs before best
    (seed(12), seed(None), "max", "better"),  # reached, however late, beats not reached
    (seed(None), seed(12), "min", "worse"),
    (seed(5), seed(5), "max", "tie"),
    (seed(5, best=0.95), seed(5, best=0.9), "max", "better"),  # same epochs: the best decides
    (seed(5, best=0.95), seed(5, best=0.9), "min", "worse"),  # min: lower is better
    (seed(None, best=0.8), seed(None, best=0.7), "max", "better"),
    (seed(None, best=0.8), seed(None, best=0.7), "min", "worse"),
    (seed(None, best=None), seed(None, best=0.7), "max", "worse"),  # no value is the worst
    (seed(None, best=None), seed(None, best=None), "max", "tie"),
    (seed(None, best=NAN), seed(None, best=0.1), "min", "worse"),
])
def test_versus(ours, other, mode, verdict):
    assert figures.versus(ours, other, mode) == verdict
    mirrored = {"better": "worse", "worse": "better", "tie": "tie"}[verdict]
    assert figures.versus(other, ours, mode) == mirrored


def test_paired_counts_and_ties():
    ours = [seed(3), seed(5), seed(5, best=0.8), seed(None), seed(4)]
    other = [seed(4), seed(5), seed(5, best=0.9), seed(6), seed(4)]
    found = figures.paired(ours, other, budget=10, mode="max")
    assert (found["better"], found["tie"], found["worse"]) == (1, 2, 2)
    # epochs: 3-4, 5-5, 5-5, (10+1)-6, 4-4
    assert found["median_difference"] == 0
    assert found["wilcoxon_p_less"] is not None and 0 <= found["wilcoxon_p_less"] <= 1


def test_paired_has_no_p_value_when_every_difference_is_zero():
    ours = [seed(4, best=0.9), seed(None, best=0.5), seed(7, best=0.2)]
    other = [seed(4, best=0.8), seed(None, best=0.6), seed(7, best=0.2)]
    found = figures.paired(ours, other, budget=10, mode="max")
    assert found["wilcoxon_p_less"] is None and found["median_difference"] == 0
    assert (found["better"], found["tie"], found["worse"]) == (1, 1, 1)  # the best decides


def test_paired_finds_a_clearly_better_strategy():
    reached_ours = [4, 6, 5, 7, 3, 5, 6, 4, 8, 5, 6, 7, 4, 5, 3, 6, 5, 4, 7, 6]
    reached_other = [9, 12, 10, 15, 8, 11, 14, 9, 16, 10, 12, 13, 8, 11, 9, 12, 10, 9, 14, 13]
    ours, other = [seed(r) for r in reached_ours], [seed(r) for r in reached_other]
    found = figures.paired(ours, other, budget=20, mode="max")
    assert found["better"] == 20 and found["worse"] == found["tie"] == 0
    assert found["wilcoxon_p_less"] < 0.05
    assert found["median_difference"] < 0
    # the one-sided test points the right way: the other way round it is far from significant
    assert figures.paired(other, ours, budget=20, mode="max")["wilcoxon_p_less"] > 0.95


def test_paired_counts_not_reached_as_budget_plus_one():
    # ours reaches on the budget's last epoch on every seed, the other never: only if "not
    # reached" costs more than the budget is ours the winner by one epoch a seed
    budget = 10
    ours, other = [seed(budget)] * 20, [seed(None)] * 20
    found = figures.paired(ours, other, budget=budget, mode="min")
    assert found["better"] == 20
    assert found["median_difference"] == -1
    assert found["wilcoxon_p_less"] < 0.05


def test_paired_of_no_seeds():
    found = figures.paired([], [], budget=5, mode="max")
    assert found == {"better": 0, "tie": 0, "worse": 0, "wilcoxon_p_less": None,
                     "median_difference": None}


# ---- the published protocols' figures ---------------------------------------------------------

def test_seconds_to_target_is_the_clock_of_the_first_result_that_reaches_it():
    assert figures.seconds_to_target([0.1, 0.6, 0.9], [2.0, 3.5, 4.0], 0.5, "max") == 3.5
    assert figures.seconds_to_target([0.1, 0.4], [2.0, 3.5], 0.5, "max") is None
    assert figures.seconds_to_target([0.9, 0.4], [1.0, 9.0], 0.5, "min") == 9.0


@pytest.mark.parametrize("value, worst, best, mode, expected", [
    (90.0, 50.0, 100.0, "max", 0.2),
    (100.0, 50.0, 100.0, "max", 0.0),
    (101.0, 50.0, 100.0, "max", 0.0),  # past the known best: no better than it
    (40.0, 50.0, 100.0, "max", 1.0),   # below the known worst: clipped
    (None, 50.0, 100.0, "max", 1.0),   # nothing yet
    (NAN, 50.0, 100.0, "max", 1.0),
    (0.3, 0.9, 0.1, "min", 0.25),      # a loss: 0.1 best, 0.9 worst
    (0.5, 0.5, 0.5, "max", 1.0),       # no span: no regret can be told
])
def test_regret(value, worst, best, mode, expected):
    assert figures.regret(value, worst, best, mode) == pytest.approx(expected)


def test_checkpoints_hold_the_best_so_far_at_each_count():
    values = [0.2, NAN, 0.7, 0.5, 0.9]
    assert figures.checkpoints(values, [1, 2, 3, 5, 8], "max") == [0.2, 0.2, 0.7, 0.9, 0.9]
    assert figures.checkpoints(values, [1, 3, 5], "min") == [0.2, 0.2, 0.2]
    assert figures.checkpoints([NAN, 0.4], [1, 2], "max") == [None, 0.4]
    assert figures.checkpoints([], [1, 2], "max") == [None, None]


@pytest.mark.parametrize("costs, expected", [
    ({"a": 0.1, "b": 0.3, "c": 0.2}, {"a": 1, "c": 2, "b": 3}),
    ({"a": 0.1, "b": 0.1, "c": 0.2}, {"a": 1.5, "b": 1.5, "c": 3}),  # ties share the mean
    ({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 2, "b": 2, "c": 2}),
    ({"a": 0.5}, {"a": 1}),
])
def test_ranks(costs, expected):
    assert figures.ranks(costs) == expected


def test_wilcoxon_less_is_one_sided_and_none_when_every_pair_ties():
    lower = [1, 2, 3, 4, 5, 6, 7, 8]
    higher = [v + 3 for v in lower]
    assert figures.wilcoxon_less(lower, higher) < 0.01
    assert figures.wilcoxon_less(higher, lower) > 0.99
    assert figures.wilcoxon_less(lower, lower) is None
