"""A learning-curve table: real trials over one spec's space, each run to its last epoch with no
early stopping, stored as plain data in one JSON-lines file.

Line 1 is the header (what was recorded, from which spec, with what code and hardware); every
further line is one trial: its index in the sampling order, the sampled params, the full
resolved training config, and its per-epoch metrics. A trial is appended (and flushed) the
moment it ends, so an interrupted recording loses at most the trials in flight and a rerun with
the same spec and seed carries on where it stopped (the params of trial k depend only on the
seed and k).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from search.spec import objective

KIND = "resnet-search learning-curve table"
VERSION = 1
# Kept of each epoch's report: what replay and the figures read, and what explains a curve.
EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_seconds")


@dataclass(frozen=True)
class Row:
    index: int  # position in the recording's sampling order
    params: dict[str, Any]  # the sampled params (only those active for this trial)
    epochs: list[dict[str, Any]]  # per-epoch metrics, EPOCH_KEYS, epoch 1 first
    outcome: str  # completed / diverged / invalid (search.spec.outcome's words)
    config: dict[str, Any] = field(default_factory=dict)  # the full resolved training config

    def curve(self, metric: str) -> list[float]:
        return [float(e[metric]) for e in self.epochs]

    def seconds(self) -> list[float]:
        return [float(e.get("epoch_seconds") or 0.0) for e in self.epochs]

    def as_json(self) -> dict:
        return {"index": self.index, "params": self.params, "outcome": self.outcome,
                "epochs": self.epochs, "config": self.config}


@dataclass
class Table:
    header: dict[str, Any]
    rows: list[Row]

    @property
    def spec(self) -> dict:
        """The resolved spec the table was recorded from (its space, objective, budget)."""
        return self.header["spec"]

    @property
    def max_epochs(self) -> int:
        return int(self.spec["budget"]["max_epochs"])

    @property
    def metric(self) -> str:
        return objective.saved_objectives(self.spec)[0][0]

    @property
    def mode(self) -> str:
        return objective.saved_objectives(self.spec)[0][1]


class TableError(ValueError):
    """A file that is not a table, or not the table a recording expects to extend."""


def epoch_row(metrics: dict) -> dict:
    return {k: metrics[k] for k in EPOCH_KEYS if k in metrics}


# The sections of a resolved spec that decide what a trial's curve is. The sampler, scheduler,
# trial count and names do not: changing a spec's search settings keeps its table valid.
CURVE_SECTIONS = ("data", "objective", "fixed", "space")


def curve_hash(spec: dict) -> str:
    """What two recordings must share to be one table (pure)."""
    decisive = {k: spec.get(k) for k in CURVE_SECTIONS}
    decisive["max_epochs"] = spec["budget"]["max_epochs"]
    canonical = json.dumps(decisive, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def header(spec: dict, sampler_seed: int, provenance: dict) -> dict:
    return {"kind": KIND, "version": VERSION, "curve_hash": curve_hash(spec),
            "sampler_seed": sampler_seed, "spec": spec, "provenance": provenance}


def _parse(line: str, where: str) -> dict:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise TableError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise TableError(f"{where}: a JSON object was expected")
    return value


def read(path: str | os.PathLike) -> Table:
    """The table in `path`. A last line cut short (a recording killed mid-write) is ignored;
    any other damage raises TableError naming the line."""
    text = Path(path).read_text()
    lines = text.splitlines()
    if not lines:
        raise TableError(f"{path} is empty: not a learning-curve table")
    head = _parse(lines[0], f"{path}:1")
    if head.get("kind") != KIND:
        raise TableError(f"{path}:1 has kind {head.get('kind')!r}, not {KIND!r}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            data = _parse(line, f"{path}:{number}")
        except TableError:
            # Only a line with no newline yet was being written when the recording stopped; a
            # whole damaged line is damage (a resuming writer would append past it).
            if number == len(lines) and not text.endswith("\n"):
                break
            raise
        try:
            rows.append(Row(index=int(data["index"]), params=dict(data["params"]),
                            epochs=list(data["epochs"]), outcome=str(data["outcome"]),
                            config=dict(data.get("config") or {})))
        except (KeyError, TypeError, ValueError) as error:
            raise TableError(f"{path}:{number}: not a trial row ({error!r})") from None
    return Table(header=head, rows=sorted(rows, key=lambda r: r.index))


class Writer:
    """Appends rows to a table file, creating it with its header, or checking that an existing
    one was recorded from the same spec and sampler seed (else its rows would mix spaces)."""

    def __init__(self, path: str | os.PathLike, head: dict) -> None:
        self.path = Path(path)
        self.done: set[int] = set()
        if self.path.exists() and self.path.stat().st_size:
            existing = read(self.path)
            for key in ("curve_hash", "sampler_seed"):
                if existing.header.get(key) != head[key]:
                    raise TableError(
                        f"{self.path} was recorded with {key} {existing.header.get(key)!r}, not "
                        f"{head[key]!r}: record into another file, or delete this one")
            self._drop_cut_line()
            # Read again: a cut line that happened to be a whole row is gone from the file, so
            # its trial is not done.
            self.done = {r.index for r in read(self.path).rows}
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append(head)

    def _drop_cut_line(self) -> None:
        text = self.path.read_text()
        if text and not text.endswith("\n"):
            self.path.write_text(text[:text.rfind("\n") + 1])

    def _append(self, value: dict) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps(value, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def add(self, row: Row) -> None:
        self._append(row.as_json())
        self.done.add(row.index)


def missing(count: int, done: Iterable[int]) -> list[int]:
    """The indices 0..count-1 a recording still has to run (pure)."""
    have = set(done)
    return [i for i in range(count) if i not in have]


def completed(table: Table, min_epochs: Optional[int] = None) -> list[Row]:
    """Rows with a curve to replay: every trial that trained at least one epoch."""
    need = 1 if min_epochs is None else min_epochs
    return [r for r in table.rows if len(r.epochs) >= need]
