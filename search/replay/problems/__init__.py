"""Benchmark problems that bring their own parameters and curves, replayed through the product's
searchers and schedulers like a recorded table: one module per family, registered here by name
(a problem file's `problem:`)."""

from __future__ import annotations

from search.replay.problems import digits, lcbench, nb201
from search.replay.problems.base import Family

FAMILIES: dict[str, Family] = {f.name: f for f in (lcbench.FAMILY, nb201.FAMILY, digits.FAMILY)}
