"""What a replayed trial trains to: the documented distance between configurations, the
features a regressor sees, and the three predictors (nearest recorded curve, distance-weighted
k nearest, random forest) with their held-out error."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import spearmanr

from search.replay import predict
from search.replay.predict import Curve, Forest, KNearest, Nearest
from search.replay.table import Row
from search.spec.model import parse_spec
from search.spec.points import order

SPACE = parse_spec({
    "name": "distance",
    "data": {"dataset": "synthetic"},
    "budget": {"trials": 1, "max_epochs": 4},
    "space": {
        "lr": {"float": [1e-4, 1e-1], "log": True},  # three decades: one decade = 1/3
        "augment": {"float": [0.0, 1.0]},
        "residual": {"choice": ["add", "scaled", "normalized"]},
        "residual_scale": {"float": [0.2, 1.0], "when": {"residual": "scaled"}},
    },
}).space
MAX_EPOCHS = 4
ADD = {"lr": 1e-2, "augment": 0.5, "residual": "add"}
SCALED = {"lr": 1e-2, "augment": 0.5, "residual": "scaled", "residual_scale": 0.6}


def rms(contributions: dict) -> float:
    """The documented distance from the parameters that differ (the rest contribute 0)."""
    return math.sqrt(sum(c ** 2 for c in contributions.values()) / len(SPACE))


def sample(rng: random.Random) -> dict:
    """A configuration of SPACE, ends of the ranges included now and then."""
    params = {"lr": 10 ** rng.choice([-4, -1, rng.uniform(-4, -1)]),
              "augment": rng.choice([0.0, 1.0, rng.random()]),
              "residual": rng.choice(["add", "scaled", "normalized"])}
    if params["residual"] == "scaled":
        params["residual_scale"] = rng.choice([0.2, 1.0, rng.uniform(0.2, 1.0)])
    return params


def curve_row(index: int, params: dict, values: list[float], outcome: str = "completed",
              seconds: float = 1.0) -> Row:
    return Row(index=index, params=params, outcome=outcome,
               epochs=[{"epoch": e, "val_acc": v, "epoch_seconds": seconds + e}
                       for e, v in enumerate(values, start=1)])


# ---- distance ----

@pytest.mark.parametrize("a, b, contributions", [
    (ADD, ADD, {}),
    (SCALED, dict(SCALED), {}),
    # log range: decades are equal steps, whichever decade
    ({**ADD, "lr": 1e-3}, {**ADD, "lr": 1e-2}, {"lr": 1 / 3}),
    ({**ADD, "lr": 1e-2}, {**ADD, "lr": 1e-1}, {"lr": 1 / 3}),
    ({**ADD, "lr": 1e-4}, {**ADD, "lr": 1e-1}, {"lr": 1.0}),
    # linear range: the difference as a fraction of the range
    ({**ADD, "augment": 0.25}, {**ADD, "augment": 0.75}, {"augment": 0.5}),
    ({**ADD, "augment": 0.0}, {**ADD, "augment": 1.0}, {"augment": 1.0}),
    # choice: no order, any mismatch is 1
    (ADD, {**ADD, "residual": "normalized"}, {"residual": 1.0}),
    # conditional: present in only one is 1 (on top of its parent's mismatch)
    (ADD, SCALED, {"residual": 1.0, "residual_scale": 1.0}),
    (SCALED, {**SCALED, "residual_scale": 0.2}, {"residual_scale": 0.5}),
    # several at once
    ({**ADD, "lr": 1e-4, "augment": 0.0}, {**ADD, "lr": 1e-1, "augment": 1.0},
     {"lr": 1.0, "augment": 1.0}),
], ids=["same", "same-conditional", "lr-1e-3-1e-2", "lr-1e-2-1e-1", "lr-ends",
        "augment-half", "augment-ends", "choice", "conditional-in-one",
        "conditional-in-both", "two"])
def test_distance(a, b, contributions):
    assert predict.distance(SPACE, a, b) == pytest.approx(rms(contributions))
    assert predict.distance(SPACE, b, a) == pytest.approx(rms(contributions))


def test_log_decades_are_equally_far():
    lower = predict.distance(SPACE, {**ADD, "lr": 1e-3}, {**ADD, "lr": 1e-2})
    upper = predict.distance(SPACE, {**ADD, "lr": 1e-2}, {**ADD, "lr": 1e-1})
    assert lower == pytest.approx(upper) and lower > 0
    # on a linear scale they would differ tenfold
    assert predict.distance(SPACE, {**ADD, "augment": 0.01}, {**ADD, "augment": 0.1}) < \
        predict.distance(SPACE, {**ADD, "augment": 0.1}, {**ADD, "augment": 1.0}) / 5


@pytest.mark.parametrize("name, a, b, expected", [
    ("residual_scale", "absent", "absent", 0.0),
    ("residual_scale", "absent", 0.6, 1.0),
    ("residual_scale", 1.0, "absent", 1.0),
    ("residual_scale", 0.2, 1.0, 1.0),
    ("residual", "add", "add", 0.0),
    ("residual", "add", "scaled", 1.0),
    ("residual", "absent", "add", 1.0),
    ("lr", 1e-4, 1e-4, 0.0),
    ("lr", 1e-4, 1e-1, 1.0),
    ("augment", 0.3, 0.1, 0.2),
])
def test_param_distance(name, a, b, expected):
    absent = object()
    a, b = (absent if v == "absent" else v for v in (a, b))
    assert predict.param_distance(SPACE[name], a, b, absent) == pytest.approx(expected)


def test_distance_is_symmetric_zero_on_itself_and_within_0_1():
    rng = random.Random(0)
    for _ in range(300):
        a, b = sample(rng), sample(rng)
        d = predict.distance(SPACE, a, b)
        assert 0.0 <= d <= 1.0 + 1e-12
        assert d == predict.distance(SPACE, b, a)
        assert predict.distance(SPACE, a, dict(a)) == 0.0
    farthest = ({"lr": 1e-4, "augment": 0.0, "residual": "add"},
                {"lr": 1e-1, "augment": 1.0, "residual": "scaled", "residual_scale": 1.0})
    assert predict.distance(SPACE, *farthest) == pytest.approx(1.0)


def test_empty_space_has_no_distance():
    assert predict.distance({}, {"a": 1}, {"a": 2}) == 0.0


@pytest.mark.parametrize("name, value, fraction", [
    ("lr", 1e-4, 0.0), ("lr", 1e-1, 1.0), ("lr", 1e-2, 2 / 3), ("lr", 10 ** -2.5, 0.5),
    ("augment", 0.0, 0.0), ("augment", 0.3, 0.3), ("residual_scale", 0.6, 0.5),
])
def test_unit(name, value, fraction):
    assert predict.unit(SPACE[name], value) == pytest.approx(fraction)


# ---- features ----

def slots(space) -> dict[str, slice]:
    """Where each parameter's numbers sit in a feature vector (space order, choices one-hot)."""
    out, at = {}, 0
    for name in order(space):
        width = len(space[name].choices) if space[name].kind == "choice" else 1
        out[name], at = slice(at, at + width), at + width
    return out


@pytest.mark.parametrize("params", [ADD, SCALED, {**ADD, "residual": "normalized"},
                                    {"lr": 1e-4, "augment": 1.0, "residual": "scaled",
                                     "residual_scale": 0.2}])
def test_features_of_a_configuration(params):
    found = predict.features(SPACE, params)
    where = slots(SPACE)
    assert len(found) == 1 + 1 + 3 + 1  # lr, augment, residual one-hot, residual_scale
    onehot = found[where["residual"]]
    assert onehot == [1.0 if c == params["residual"] else 0.0 for c in ("add", "scaled",
                                                                          "normalized")]
    for name in ("lr", "augment"):
        assert found[where[name]] == [pytest.approx(predict.unit(SPACE[name], params[name]))]
    scale = found[where["residual_scale"]]
    expected = predict.unit(SPACE["residual_scale"], params["residual_scale"]) \
        if "residual_scale" in params else -1.0  # absent: below any present value
    assert scale == [pytest.approx(expected)]


def test_features_of_an_absent_choice_are_all_zero():
    found = predict.features(SPACE, {"lr": 1e-3, "augment": 0.0})
    where = slots(SPACE)
    assert found[where["residual"]] == [0.0, 0.0, 0.0]


def test_features_follow_the_space_order_not_the_params_order():
    shuffled = {k: SCALED[k] for k in reversed(list(SCALED))}
    assert predict.features(SPACE, shuffled) == predict.features(SPACE, SCALED)


@pytest.mark.parametrize("values, length, expected", [
    ([0.1, 0.2], 4, [0.1, 0.2, 0.2, 0.2]),
    ([0.3], 3, [0.3, 0.3, 0.3]),
    ([0.1, 0.2, 0.3], 3, [0.1, 0.2, 0.3]),
    ((0.5, 0.4), 2, [0.5, 0.4]),
])
def test_padded(values, length, expected):
    assert predict.padded(values, length) == expected


# ---- Nearest ----

LRS = [1e-4, 1e-3, 1e-2, 1e-1]


def lr_rows(diverged_index: int = -1) -> list[Row]:
    out = []
    for i, lr in enumerate(LRS):
        params = {**ADD, "lr": lr}
        if i == diverged_index:
            out.append(curve_row(i, params, [0.1, 0.05], "diverged", seconds=i))
        else:
            out.append(curve_row(i, params, [0.2 + 0.1 * i + 0.01 * e for e in range(4)],
                                 seconds=i))
    return out


@pytest.mark.parametrize("lr, index", [(1e-4, 0), (2e-4, 0), (5e-4, 1), (2e-3, 1), (4e-2, 3),
                                       (1e-1, 3)])
def test_nearest_returns_the_recorded_curve_of_the_nearest_row(lr, index):
    rows = lr_rows()
    curve = Nearest(SPACE, rows, "val_acc", MAX_EPOCHS)({**ADD, "lr": lr})
    assert curve == Curve(rows[index].curve("val_acc"), rows[index].seconds(), diverged=False)


def test_nearest_marks_a_diverged_row_and_keeps_its_short_curve():
    rows = lr_rows(diverged_index=2)
    curve = Nearest(SPACE, rows, "val_acc", MAX_EPOCHS)({**ADD, "lr": 1.1e-2})
    assert curve.diverged and curve.values == [0.1, 0.05] and len(curve.seconds) == 2


def test_nearest_ties_go_to_the_lower_index():
    low = curve_row(3, {**ADD, "lr": 1e-3}, [0.3] * 4)
    high = curve_row(7, {**ADD, "lr": 1e-1}, [0.7] * 4)
    twin = curve_row(1, {**ADD, "lr": 1e-1}, [0.1] * 4)
    # 1e-2 is one decade from both: the lower index wins whatever the rows' order
    for rows in ([high, low], [low, high]):
        assert Nearest(SPACE, rows, "val_acc", 4)({**ADD, "lr": 1e-2}).values == [0.3] * 4
    # two recordings of one configuration: the earlier one
    assert Nearest(SPACE, [high, twin], "val_acc", 4)({**ADD, "lr": 1e-1}).values == [0.1] * 4


def test_nearest_reads_the_asked_metric():
    r = Row(index=0, params=ADD, outcome="completed",
            epochs=[{"epoch": 1, "val_acc": 0.5, "val_loss": 1.5, "epoch_seconds": 2.0}])
    assert Nearest(SPACE, [r], "val_loss", 1)(ADD).values == [1.5]


# ---- KNearest ----

def test_knearest_with_k_1_is_nearest():
    rows = [curve_row(i, p, [0.1 * e + 0.01 * i for e in range(1, 5)])
            for i, p in enumerate(sample(random.Random(1)) for _ in range(25))]
    rng = random.Random(2)
    nearest = Nearest(SPACE, rows, "val_acc", MAX_EPOCHS)
    one = KNearest(SPACE, rows, "val_acc", MAX_EPOCHS, k=1)
    for _ in range(30):
        query = sample(rng)
        expected, found = nearest(query), one(query)
        assert found.values == pytest.approx(expected.values)
        assert found.seconds == expected.seconds


def test_knearest_of_constant_curves_is_a_weighted_mean_within_their_range():
    rng = random.Random(3)
    rows = [curve_row(i, sample(rng), [level] * MAX_EPOCHS)
            for i, level in enumerate(rng.uniform(0.2, 0.9) for _ in range(20))]
    level = {r.index: r.curve("val_acc")[0] for r in rows}
    for query in [sample(rng) for _ in range(20)] + [rows[4].params]:
        near = sorted(rows, key=lambda r: (predict.distance(SPACE, query, r.params), r.index))[:3]
        found = KNearest(SPACE, rows, "val_acc", MAX_EPOCHS, k=3)(query)
        assert len(found.values) == MAX_EPOCHS
        assert max(found.values) - min(found.values) < 1e-12  # constant stays constant
        levels = [level[r.index] for r in near]
        assert min(levels) - 1e-12 <= found.values[0] <= max(levels) + 1e-12
        assert found.seconds == near[0].seconds()  # the clock from the nearest row
    # a query on a recorded configuration leans on that row more than an unweighted mean would
    on_row = KNearest(SPACE, rows, "val_acc", MAX_EPOCHS, k=3)(rows[4].params).values[0]
    near = sorted(rows, key=lambda r: (predict.distance(SPACE, rows[4].params, r.params),
                                       r.index))[:3]
    plain = sum(level[r.index] for r in near) / 3
    assert abs(on_row - level[4]) < abs(plain - level[4]) or plain == level[4]


def test_knearest_holds_a_diverged_curve_at_its_last_value():
    rows = lr_rows(diverged_index=2)
    found = KNearest(SPACE, rows, "val_acc", MAX_EPOCHS, k=1)({**ADD, "lr": 1e-2})
    assert found.values == [0.1, 0.05, 0.05, 0.05]
    assert len(found.seconds) == MAX_EPOCHS and not found.diverged


# ---- Forest ----

def final_of(params: dict) -> float:
    """Best at lr = 1e-2.5; augment and the residual barely matter."""
    u = predict.unit(SPACE["lr"], params["lr"])
    return 0.9 - 0.6 * (u - 0.5) ** 2 + 0.01 * params["augment"]


def synthetic(count: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        params = sample(rng)
        final = final_of(params)
        out.append(curve_row(index, params, [final * e / MAX_EPOCHS + rng.gauss(0, 0.005)
                                             for e in range(1, MAX_EPOCHS + 1)]))
    return out


def test_forest_predicts_the_held_out_ordering():
    rows = synthetic(60, seed=0)
    train, test = rows[:45], rows[45:]
    forest = Forest(SPACE, train, "val_acc", MAX_EPOCHS)
    predicted = [forest(r.params).values[-1] for r in test]
    truth = [r.curve("val_acc")[-1] for r in test]
    assert spearmanr(predicted, truth).statistic > 0.8
    curve = forest(test[0].params)
    assert len(curve.values) == MAX_EPOCHS and len(curve.seconds) == MAX_EPOCHS
    assert curve.values[0] < curve.values[-1]  # it learned curves rise, not just finals


def test_forest_is_repeatable_and_caches_by_configuration():
    rows = synthetic(30, seed=1)
    a, b = Forest(SPACE, rows, "val_acc", MAX_EPOCHS), Forest(SPACE, rows, "val_acc", MAX_EPOCHS)
    query = {**SCALED, "lr": 3e-3}
    assert a(query) == b(query)
    assert a(query) is a({k: query[k] for k in reversed(list(query))})  # same config, any order
    assert a({**query, "lr": 3e-2}) != a(query)


def test_forest_holds_diverged_curves_at_their_last_value():
    # every row diverged after one epoch at its level: whatever it predicts stays level
    rng = random.Random(4)
    rows = [curve_row(i, sample(rng), [rng.uniform(0.1, 0.9)], "diverged") for i in range(20)]
    values = Forest(SPACE, rows, "val_acc", MAX_EPOCHS)(ADD).values
    assert len(values) == MAX_EPOCHS and max(values) - min(values) < 1e-9


# ---- fit and holdout ----

@pytest.mark.parametrize("name, kind", [("nearest", Nearest), ("knn", KNearest),
                                        ("forest", Forest)])
def test_fit_builds_each_registered_predictor(name, kind):
    predictor = predict.fit(name, SPACE, synthetic(12, seed=5), "val_acc", MAX_EPOCHS)
    assert isinstance(predictor, kind)
    assert len(predictor(ADD).values) >= 1
    assert set(predict.PREDICTORS) == {"nearest", "knn", "forest"}


def test_fit_rejects_an_unknown_name_naming_it():
    with pytest.raises(ValueError, match=r"'oracle'.*nearest.*knn.*forest"):
        predict.fit("oracle", SPACE, synthetic(5, seed=0), "val_acc", MAX_EPOCHS)


@pytest.mark.parametrize("name", list(predict.PREDICTORS))
def test_holdout_on_a_learnable_table(name):
    rows = synthetic(60, seed=6)
    report = predict.holdout(name, SPACE, rows, "val_acc", MAX_EPOCHS, folds=5)
    assert set(report) == {"mae_curve", "mae_final", "spearman_final", "rows", "folds"}
    assert (report["rows"], report["folds"]) == (60, 5)
    finals = [r.curve("val_acc")[-1] for r in rows]
    guess = sum(finals) / len(finals)
    # better than knowing nothing of the configuration (predicting the mean final value)
    assert 0 < report["mae_final"] < sum(abs(f - guess) for f in finals) / len(finals)
    assert 0 < report["mae_curve"]
    assert report["spearman_final"] > 0.2


def test_holdout_never_predicts_a_row_from_itself():
    # Curves that are pure noise: a predictor that saw the held-out row would return it
    # exactly (error 0, perfect rank correlation).
    rng = random.Random(7)
    rows = [curve_row(i, sample(rng), [rng.uniform(0, 1)] * MAX_EPOCHS) for i in range(60)]
    report = predict.holdout("nearest", SPACE, rows, "val_acc", MAX_EPOCHS)
    assert report["mae_final"] > 0.1
    assert abs(report["spearman_final"]) < 0.5


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_holdout_of_identical_curves_is_exact():
    rng = random.Random(8)
    rows = [curve_row(i, sample(rng), [0.2, 0.4, 0.6, 0.8]) for i in range(20)]
    for name in predict.PREDICTORS:
        report = predict.holdout(name, SPACE, rows, "val_acc", MAX_EPOCHS, folds=4)
        assert report["mae_curve"] == pytest.approx(0, abs=1e-9)
        assert report["folds"] == 4 and report["rows"] == 20
        assert math.isnan(report["spearman_final"])  # no order to get right: undefined


def test_holdout_is_repeatable_for_a_seed():
    rows = synthetic(30, seed=9)
    assert predict.holdout("knn", SPACE, rows, "val_acc", MAX_EPOCHS, seed=1) == \
        predict.holdout("knn", SPACE, rows, "val_acc", MAX_EPOCHS, seed=1)
