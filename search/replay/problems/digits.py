"""Our own learning-curve tables (bench/record_curves.py) as a problem: the recorded space is the
problem's parameters (a replay cannot answer outside what was recorded), and a proposed
configuration's curve comes from a predictor fitted to the table (search.replay.predict; the
forest by default, as bench/replay.py uses). `data` is the table file; its one task is the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from search.replay import predict, table
from search.replay.predict import Curve
from search.replay.problems.base import Categorical, Domain, Family, Numeric, ProblemFields
from search.spec.params import parse_space

NAME = "digits"


def _table(data: Optional[Path]) -> table.Table:
    if data is None:
        raise ValueError("the digits problem needs `data:`, a learning-curve table "
                         "(bench/curves/digits.jsonl)")
    return table.read(data)


def domain(raw: Mapping[str, Any]) -> Domain:
    """A recorded `space:` entry as the domain it covers."""
    if "choice" in raw:
        return Categorical(tuple(raw["choice"]))
    kind = "int" if "int" in raw else "float"
    low, high = raw[kind]
    return Numeric(kind, low, high, bool(raw.get("log")))


def parameters(data: Optional[Path]) -> dict[str, Domain]:
    return {name: domain(raw) for name, raw in _table(data).spec["space"].items()}


def defaults(data: Optional[Path]) -> dict[str, Any]:
    return {}  # a table's trials vary exactly its space; the rest is its spec's `fixed`


def tasks(data: Optional[Path]) -> list[str]:
    return [Path(data).stem] if data is not None else []


class Task:
    def __init__(self, data: Path, predictor: str = "forest") -> None:
        found = _table(data)
        raw = found.spec["space"]
        # The recorded space, parsed against itself: Param objects for the predictor's features.
        space = parse_space(raw, fields=ProblemFields(parameters(data), NAME))
        self.metric, self.mode, self.max_epochs = found.metric, found.mode, found.max_epochs
        self.task = Path(data).stem
        self.rows = table.completed(found)
        self.predict = predict.fit(predictor, space, self.rows, found.metric, found.max_epochs)

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        return self.predict(params)

    def points(self, objectives: Sequence[str]) -> list[tuple[float, ...]]:
        """Every recorded trial that ran all its epochs as a point of `objectives` (the metric
        and its costs, predict.cost: train_seconds): the range a search's hypervolume is
        measured in."""
        out = []
        for row in self.rows:
            curve = Curve(row.curve(self.metric), row.seconds())
            if len(curve.values) == self.max_epochs:
                out.append(tuple(curve.values[-1] if name == self.metric
                                 else predict.cost(curve, self.max_epochs, name)
                                 for name in objectives))
        return out


def open_task(task: str, data: Optional[Path]) -> Task:
    if data is None or Path(data).stem != task:
        raise ValueError(f"digits task {task!r} is not the table {data}")
    return Task(Path(data))


FAMILY = Family(NAME, True, parameters, defaults, tasks, open_task)
