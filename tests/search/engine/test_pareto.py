"""The rules of several objectives, by hand: non-domination ranks under mixed directions, crowding
distances, the rank-then-crowding order MO-ASHA promotes by, and hypervolumes."""

from __future__ import annotations

import math

import pytest

from search.engine import pareto

INF = math.inf
MAX_MIN = ("max", "min")  # e.g. val_acc up, params down
MIN_MIN = ("min", "min")


@pytest.mark.parametrize("name, points, modes, ranks", [
    # C (0.7, 80) is behind B (0.8, 50); E behind C; D is A again: equal points share a rank
    ("mixed", [(0.9, 100), (0.8, 50), (0.7, 80), (0.9, 100), (0.6, 200)], MAX_MIN,
     [0, 0, 1, 0, 2]),
    # the same numbers with the first objective minimised: a different front
    ("both-min", [(0.9, 100), (0.8, 50), (0.7, 80), (0.9, 100), (0.6, 200)], MIN_MIN,
     [1, 0, 0, 1, 0]),
    # a tie in one objective: the better in the other dominates
    ("tie-one", [(1, 5), (1, 3)], ("max", "max"), [0, 1]),
    ("tie-one-min", [(1, 5), (1, 3)], ("max", "min"), [1, 0]),
    ("all-equal", [(1, 1), (1, 1), (1, 1)], MIN_MIN, [0, 0, 0]),
    # one objective: the dense ranks of the sorted values, ties shared
    ("one-max", [(3,), (1,), (3,), (2,)], ("max",), [0, 2, 0, 1]),
    ("one-min", [(3,), (1,), (3,), (2,)], ("min",), [2, 0, 2, 1]),
    ("three", [(1, 2, 3), (3, 2, 1), (2, 2, 2), (3, 3, 3)], ("min",) * 3, [0, 0, 0, 1]),
    # a failed trial's worst values sit behind every real point
    ("worst", [(0.5, 10), (-INF, INF), (0.1, 20)], MAX_MIN, [0, 2, 1]),
    ("empty", [], MAX_MIN, []),
])
def test_non_dominated_ranks(name, points, modes, ranks):
    assert pareto.ranks(points, modes) == ranks
    assert pareto.front(points, modes) == [i for i, r in enumerate(ranks) if r == 0]


@pytest.mark.parametrize("name, points, distances", [
    # per objective the gap between neighbours over the range; both ends inf
    ("three", [(1, 5), (2, 3), (4, 1)], [INF, (4 - 1) / 3 + (5 - 1) / 4, INF]),
    ("four", [(0, 4), (1, 2), (3, 1), (4, 0)], [INF, 3 / 4 + 3 / 4, 3 / 4 + 2 / 4, INF]),
    # copies share the distance of their value, computed once
    ("duplicates", [(0, 2), (1, 1), (1, 1), (2, 0)], [INF, 2.0, 2.0, INF]),
    # an objective in which every point is equal adds nothing
    ("flat", [(1, 0), (1, 1), (1, 2)], [INF, 1.0, INF]),
    ("one-point", [(1, 1)], [0.0]),
    ("two-points", [(0, 1), (1, 0)], [INF, INF]),
    ("order-free", [(4, 1), (1, 5), (2, 3)], [INF, INF, (4 - 1) / 3 + (5 - 1) / 4]),
    ("empty", [], []),
])
def test_crowding_distances(name, points, distances):
    assert pareto.crowding(points) == pytest.approx(distances)


@pytest.mark.parametrize("name, points, modes, order", [
    # one objective: plain sorting, ties in input order
    ("one-max", [(0.5,), (0.9,), (0.7,), (0.9,)], ("max",), [1, 3, 2, 0]),
    ("one-min", [(0.5,), (0.9,), (0.7,), (0.9,)], ("min",), [0, 2, 1, 3]),
    # the front first, its ends (inf) before its middle (1.5 before 1.25), then the next fronts
    ("fronts", [(0, 4), (1, 2), (3, 1), (4, 0), (2, 3), (5, 5)], MIN_MIN, [0, 3, 1, 2, 4, 5]),
    # the same in the units of mixed directions: accuracy up, size down
    ("mixed", [(0.0, 4), (-1, 2), (-3, 1), (-4, 0), (-2, 3), (-5, 5)], MAX_MIN,
     [0, 3, 1, 2, 4, 5]),
    ("duplicates", [(0, 2), (1, 1), (1, 1), (2, 0)], MIN_MIN, [0, 3, 1, 2]),
    ("all-equal", [(1, 1)] * 3, MIN_MIN, [0, 1, 2]),
    ("empty", [], MIN_MIN, []),
])
def test_rank_then_crowding_order(name, points, modes, order):
    assert pareto.order(points, modes) == order


def test_one_objective_orders_as_a_plain_sort():
    values = [0.3, 0.91, 0.5, 0.91, 0.1, 0.77, 0.5]
    for mode, sign in (("max", -1), ("min", 1)):
        expected = sorted(range(len(values)), key=lambda i: (sign * values[i], i))
        assert pareto.order([(v,) for v in values], (mode,)) == expected


# 2-D by hand (accuracy up, size down; reference 0.5 accuracy, 5 size): (0.9, 3) dominates
# [0.5, 0.9] x [3, 5] = 0.4 * 2 = 0.8, (0.8, 1) dominates [0.5, 0.8] x [1, 5] = 0.3 * 4 = 1.2,
# together minus their overlap [0.5, 0.8] x [3, 5] = 0.6: 1.4.
FRONT = [(0.9, 3), (0.8, 1)]


@pytest.mark.parametrize("name, points, modes, reference, volume", [
    ("one-point", [(0.9, 3)], MAX_MIN, (0.5, 5), 0.8),
    ("two-points", FRONT, MAX_MIN, (0.5, 5), 1.4),
    ("dominated-adds-nothing", FRONT + [(0.7, 4)], MAX_MIN, (0.5, 5), 1.4),
    ("duplicate-adds-nothing", FRONT + [(0.9, 3)], MAX_MIN, (0.5, 5), 1.4),
    # worse than the reference in one objective: outside, nothing added
    ("outside", FRONT + [(0.4, 0.5), (0.95, 6)], MAX_MIN, (0.5, 5), 1.4),
    ("worst", FRONT + [(-INF, INF)], MAX_MIN, (0.5, 5), 1.4),
    ("on-the-reference", [(0.5, 1)], MAX_MIN, (0.5, 5), 0.0),
    ("none", [], MAX_MIN, (0.5, 5), 0.0),
    ("one-objective", [(0.7,), (0.9,)], ("max",), (0.5,), 0.4),
    # 3-D: [1, 3] x [2, 3] x [2, 3] = 2 and [2, 3] x [1, 3] x [1, 3] = 4 overlap in a unit cube
    ("three", [(1, 2, 2), (2, 1, 1)], ("min",) * 3, (3, 3, 3), 5.0),
])
def test_hypervolume(name, points, modes, reference, volume):
    assert pareto.hypervolume(points, modes, reference) == pytest.approx(volume)


@pytest.mark.parametrize("call, message", [
    (lambda: pareto.ranks([(0.9, math.nan)], MAX_MIN), "NaN"),
    (lambda: pareto.ranks([(0.9, 1), (0.8,)], MAX_MIN), "2 values"),
    (lambda: pareto.ranks([(0.9, 1, 2)], MAX_MIN), "2 values"),
    (lambda: pareto.ranks([(0.9,)], ("up",)), "mode is 'up'"),
    (lambda: pareto.ranks([(0.9,)], ()), "at least one objective"),
    (lambda: pareto.hypervolume(FRONT, MAX_MIN, (0.5, INF)), "finite"),
])
def test_bad_input_is_refused_with_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()
