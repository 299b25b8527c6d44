"""What a replayed trial trains to: the curve a proposed configuration is given.

A searcher proposes configurations the table never recorded, so each is answered from the table
by one of the predictors below. `holdout` measures how well each predicts curves it was not
fitted on (k-fold over the table's rows); bench/README.md quotes which one wins on digits.

The distance between two configurations of one space (what `nearest` and `knn` use) is the root
mean square over the space's parameters of a per-parameter distance in [0, 1]:
- a float or int range: the difference of the two values as fractions of the range, measured on
  the log scale when the range is log (lr 1e-3 vs 1e-2 is as far apart as 1e-2 vs 1e-1);
- a choice: 0 when equal, 1 when not (choices have no order);
- a conditional parameter: 0 when absent from both, 1 when present in only one (residual_scale of
  a `scaled` trial vs an `add` trial), else as above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from search.replay.table import Row
from search.spec.points import order


@dataclass(frozen=True)
class Curve:
    values: list[float]  # the objective after each epoch; shorter than max_epochs if it diverged
    seconds: list[float]  # each epoch's training time (the virtual clock's step)
    diverged: bool = False
    # What the configuration costs whatever its epoch (a benchmark's latency or size), by the
    # metric name an objective gives it; `train_seconds` is the curve's own (simulator.metric).
    costs: Mapping[str, float] = field(default_factory=dict)


def epoch_seconds(curve: Curve, epoch: int) -> float:
    """How long epoch `epoch` (1-based) takes; a diverged epoch as long as the last recorded."""
    if epoch <= len(curve.seconds):
        return float(curve.seconds[epoch - 1])
    return float(curve.seconds[-1]) if curve.seconds else 1.0


TRAIN_SECONDS = "train_seconds"  # resnet_core.names.COST_METRICS: the Trainer's cumulative time


def cost(curve: Curve, epoch: int, name: str) -> float:
    """Objective `name` of a trial after `epoch` epochs, when it is not the learning metric
    (pure): the configuration's cost as the benchmark gives it, or its cumulative training
    seconds; KeyError naming what the curve has when neither."""
    if name in curve.costs:
        return float(curve.costs[name])
    if name == TRAIN_SECONDS:
        return sum(epoch_seconds(curve, e) for e in range(1, epoch + 1))
    raise KeyError(f"objective {name!r} is not a cost this problem gives (it gives "
                   f"{sorted([*curve.costs, TRAIN_SECONDS])})")


def unit(param: Any, value: Any) -> float:
    """A range value as its fraction of the range (log scale for a log range)."""
    if param.log:
        low, high, value = math.log(param.low), math.log(param.high), math.log(value)
    else:
        low, high = float(param.low), float(param.high)
    return 0.0 if high == low else (float(value) - low) / (high - low)


def param_distance(param: Any, a: Any, b: Any, absent: object) -> float:
    if a is absent and b is absent:
        return 0.0
    if a is absent or b is absent:
        return 1.0
    if param.kind == "choice":
        return 0.0 if a == b else 1.0
    return abs(unit(param, a) - unit(param, b))


def distance(space: Mapping[str, Any], a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """The documented distance between two configurations of `space` (pure)."""
    if not space:
        return 0.0
    absent = object()
    total = sum(param_distance(space[n], a.get(n, absent), b.get(n, absent), absent) ** 2
                for n in space)
    return math.sqrt(total / len(space))


def features(space: Mapping[str, Any], params: Mapping[str, Any]) -> list[float]:
    """A configuration as numbers for a regressor: a range as its unit fraction (-1 when
    absent), a choice one-hot (all 0 when absent)."""
    out: list[float] = []
    for name in order(space):
        param = space[name]
        present = name in params
        if param.kind == "choice":
            out += [1.0 if present and params[name] == c else 0.0 for c in param.choices]
        else:
            out.append(unit(param, params[name]) if present else -1.0)
    return out


def padded(values: Sequence[float], length: int) -> list[float]:
    """A curve held at its last value up to `length` epochs (a diverged trial's level)."""
    values = list(values)
    return values + [values[-1]] * (length - len(values))


class Predictor(Protocol):
    def __call__(self, params: Mapping[str, Any]) -> Curve: ...


def _nearest_rows(space: Mapping[str, Any], rows: Sequence[Row], params: Mapping[str, Any],
                  k: int) -> list[tuple[float, Row]]:
    scored = sorted(((distance(space, params, r.params), r.index, r) for r in rows),
                    key=lambda item: item[:2])
    return [(d, r) for d, _, r in scored[:k]]


@dataclass
class Nearest:
    """The recorded curve of the nearest recorded configuration (ties: the earlier row). A
    real curve, noise and divergence included."""

    space: Mapping[str, Any]
    rows: Sequence[Row]
    metric: str
    max_epochs: int

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        (_, row), = _nearest_rows(self.space, self.rows, params, 1)
        return Curve(row.curve(self.metric), row.seconds(),
                     diverged=row.outcome == "diverged")


@dataclass
class KNearest:
    """The inverse-distance-weighted mean of the k nearest curves (each held at its last value
    past a divergence); epoch times from the nearest."""

    space: Mapping[str, Any]
    rows: Sequence[Row]
    metric: str
    max_epochs: int
    k: int = 5

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        near = _nearest_rows(self.space, self.rows, params, self.k)
        weights = np.array([1.0 / (d + 1e-3) for d, _ in near])
        curves = np.array([padded(r.curve(self.metric), self.max_epochs) for _, r in near])
        values = (weights[:, None] * curves).sum(0) / weights.sum()
        return Curve([float(v) for v in values], padded(near[0][1].seconds(), self.max_epochs))


# Each proposed configuration costs one prediction: 50 trees take ~4 ms on this CPU, 200 trees
# ~16 ms (a 64-trial search x 100 seeds x 5 strategies is 32,000 predictions), and predicted
# held-out curves no better (bench/README.md).
TREES = 50


class Forest:
    """A random forest (scikit-learn) from a configuration's features to its whole curve (one
    output per epoch, diverged curves held at their last value); epoch times from the nearest
    row. Smooth: it predicts the mean a configuration's neighbourhood trains to, not one run."""

    def __init__(self, space: Mapping[str, Any], rows: Sequence[Row], metric: str,
                 max_epochs: int, seed: int = 0, trees: int = TREES) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self.space, self.rows, self.metric, self.max_epochs = space, rows, metric, max_epochs
        x = np.array([features(space, r.params) for r in rows])
        y = np.array([padded(r.curve(metric), max_epochs) for r in rows])
        self.model = RandomForestRegressor(n_estimators=trees, min_samples_leaf=2,
                                           random_state=seed, n_jobs=1).fit(x, y)
        self._cache: dict[tuple, Curve] = {}

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in self._cache:
            values = self.model.predict(np.array([features(self.space, params)]))[0]
            (_, near), = _nearest_rows(self.space, self.rows, params, 1)
            self._cache[key] = Curve([float(v) for v in values],
                                     padded(near.seconds(), self.max_epochs))
        return self._cache[key]


# name -> how to fit it on a table's rows: (space, rows, metric, max_epochs) -> Predictor
PREDICTORS: dict[str, Callable[..., Predictor]] = {
    "nearest": Nearest,
    "knn": KNearest,
    "forest": Forest,
}


def fit(name: str, space: Mapping[str, Any], rows: Sequence[Row], metric: str,
        max_epochs: int) -> Predictor:
    if name not in PREDICTORS:
        raise ValueError(f"predictor is {name!r} but must be one of {list(PREDICTORS)}")
    return PREDICTORS[name](space, rows, metric, max_epochs)


def holdout(name: str, space: Mapping[str, Any], rows: Sequence[Row], metric: str,
            max_epochs: int, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """How well predictor `name` predicts curves it was not fitted on: k-fold over the rows.
    mae_curve: mean |predicted - recorded| over every epoch; mae_final: at the last epoch;
    spearman_final: rank correlation of predicted and recorded final values (what a searcher
    acts on is the order of configurations, not the values)."""
    from scipy.stats import spearmanr

    rows = list(rows)
    shuffled = np.random.default_rng(seed).permutation(len(rows))
    errors, finals, truths = [], [], []
    for fold in range(folds):
        test = {int(i) for i in shuffled[fold::folds]}
        train = [r for i, r in enumerate(rows) if i not in test]
        predictor = fit(name, space, train, metric, max_epochs)
        for i in sorted(test):
            truth = padded(rows[i].curve(metric), max_epochs)
            guess = padded(predictor(rows[i].params).values, max_epochs)
            errors += [abs(a - b) for a, b in zip(guess, truth)]
            finals.append(guess[-1])
            truths.append(truth[-1])
    return {"mae_curve": float(np.mean(errors)),
            "mae_final": float(np.mean(np.abs(np.array(finals) - np.array(truths)))),
            "spearman_final": float(spearmanr(finals, truths).statistic),
            "rows": len(rows), "folds": folds}
