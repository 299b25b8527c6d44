"""The rules of several objectives, as pure functions of points (one tuple of values per trial)
and their modes (`max`/`min` per objective, turned into code only by search.spec.objective).

- `ranks`: non-dominated sorting (Deb et al. 2002, NSGA-II): rank 0 is the Pareto front, rank 1
  the front of what remains, and so on. A point dominates another when it is at least as good in
  every objective and better in one; equal points (duplicates) dominate neither, so they share a
  rank. With one objective the ranks are the dense ranks of the sorted values.
- `crowding`: NSGA-II's crowding distance of the points of one front: per objective, the gap
  between a point's two neighbours divided by the front's finite range, summed; the two ends of an
  objective get inf, an objective in which every point is equal adds 0. Duplicates get the
  distance of their value computed once (Fortin & Parizeau 2013, "Revisiting the NSGA-II
  crowding-distance computation"), so a copy never looks isolated, nor twice as crowded, because
  of where a sort happened to put it.
- `order`: rank first, then the larger crowding distance within the rank, then the input order:
  what MO-ASHA (Schmucker et al. 2021, "Multi-objective multi-fidelity hyperparameter
  optimization with application to fairness") promotes by at a rung, NSGA-II's selection.
- `best_first`, `score`: a scheduler's rung ranked by these rules (MO-ASHA), a result's score
  there (signed so that larger is better; one objective: the plain signed value).
- `hypervolume`: the volume the points dominate up to a reference point (Zitzler & Thiele 1998),
  in the objectives' own units; a point not better than the reference in every objective adds
  nothing.

Values may be +-inf (the worst value a failed trial gets, search.spec.objective.worst) but never
NaN: a point without a value has no place in an order, and the caller leaves it out.

The sorting and the volume are Optuna's (its NSGA-II and hypervolume code, private there: reached
through search.engine.compat, whose test checks they still exist).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence, Union

import numpy as np

from search.engine import compat
from search.spec import objective

Point = Sequence[float]


def losses(points: Sequence[Point], modes: Sequence[str]) -> np.ndarray:
    """The points as an (n, k) array in which smaller is better in every column (a maximised
    objective negated); refuses a point of the wrong length or with a NaN."""
    signs = np.array([objective.sign(mode) for mode in modes], dtype=float)
    if not len(signs):
        raise ValueError("at least one objective is needed")
    if any(len(point) != len(signs) for point in points):
        raise ValueError(f"every point needs {len(signs)} values (one per mode {list(modes)}); "
                         f"got {[len(p) for p in points]}")
    values = np.array([[float(v) for v in point] for point in points],
                      dtype=float).reshape(len(points), len(signs))
    if np.isnan(values).any():
        bad = [i for i, row in enumerate(values) if np.isnan(row).any()]
        raise ValueError(f"points {bad} hold NaN: leave out trials without a value")
    return values * -signs


def ranks(points: Sequence[Point], modes: Sequence[str]) -> list[int]:
    """The non-domination rank of each point, 0 for the Pareto front."""
    return [int(r) for r in compat.nondomination_ranks(losses(points, modes))]


def front(points: Sequence[Point], modes: Sequence[str]) -> list[int]:
    """Indices of the points on the Pareto front (rank 0), in input order."""
    return [i for i, rank in enumerate(ranks(points, modes)) if rank == 0]


def front_of(candidates: Mapping[str, Point], modes: Sequence[str]) -> list[str]:
    """The ids of the candidates on their Pareto front, in the order given (search.experiment.
    results.Results.candidates: trials of the whole budget that hold every constraint)."""
    ids = list(candidates)
    return [ids[i] for i in front([candidates[t] for t in ids], modes)] if ids else []


def on_front(results: Any) -> list[str]:
    """The trials on the Pareto front of a search's results (search.experiment.results.Results)
    in their order, best first by the primary objective; [] for a search of one objective."""
    if not results.objectives:
        return []
    return front_of(results.candidates(), [mode for _, mode in results.objectives])


def crowding(points: Sequence[Point]) -> list[float]:
    """The crowding distance of each point among `points` (one front; the distance does not
    depend on the objectives' directions)."""
    values = np.array([[float(v) for v in point] for point in points], dtype=float)
    if not len(points):
        return []
    unique, where = np.unique(values, axis=0, return_inverse=True)
    where = where.reshape(-1)
    distance = np.zeros(len(unique))
    for column in range(unique.shape[1]):
        # by this objective, ties by the whole point: a deterministic neighbour for each
        order = np.lexsort((*unique.T[::-1], unique[:, column]))
        v = unique[order, column]
        if v[0] == v[-1]:
            continue  # every point equal here: no information
        padded = np.concatenate(([-math.inf], v, [math.inf]))
        finite = v[np.isfinite(v)]
        width = finite.max() - finite.min() if len(finite) else 0.0
        width = width if width > 0 else 1.0
        for j, index in enumerate(order):
            low, high = padded[j], padded[j + 2]
            # inf - inf (two neighbours at the same infinity) is no gap
            distance[index] += 0.0 if low == high else (high - low) / width
    return [float(d) for d in distance[where]]


def order(points: Sequence[Point], modes: Sequence[str]) -> list[int]:
    """Indices of the points best first: by rank, then by the larger crowding distance within
    the rank, then by input order. With one objective: by value, ties in input order."""
    rank = ranks(points, modes)
    spread = [0.0] * len(rank)
    for r in set(rank):
        members = [i for i, own in enumerate(rank) if own == r]
        for i, d in zip(members, crowding([points[i] for i in members])):
            spread[i] = d
    return sorted(range(len(rank)), key=lambda i: (rank[i], -spread[i], i))


def bounds(points: Sequence[Point], modes: Sequence[str]) -> list[tuple[float, float]]:
    """(best, worst) of each objective over `points`, by its mode (pure)."""
    out = []
    for column, mode in enumerate(modes):
        values = [float(p[column]) for p in points]
        low, high = min(values), max(values)
        out.append((high, low) if mode == "max" else (low, high))
    return out


def hypervolume(points: Sequence[Point], modes: Sequence[str], reference: Point) -> float:
    """The volume dominated by `points` and bounded by `reference` (one value per objective,
    finite, in the objectives' units); 0.0 when no point is better than it everywhere."""
    ref = losses([reference], modes)[0]
    if not np.isfinite(ref).all():
        raise ValueError(f"the reference point must be finite; got {list(reference)}")
    values = losses(points, modes)
    inside = values[(values < ref).all(axis=1)] if len(values) else values
    return float(compat.hypervolume(inside, ref)) if len(inside) else 0.0


# A trial's score at a rung, larger better: one signed value, or one per objective.
Score = Union[float, tuple]


def best_first(rung: Mapping[str, Score]) -> list[str]:
    """The trials of a rung best first (pure): by value (larger is better), or with several
    objectives by non-dominated rank, then crowding distance; ties by the order recorded."""
    ids = list(rung)
    if ids and isinstance(rung[ids[0]], (tuple, list)):  # (a list: read back from JSON)
        width = len(rung[ids[0]])
        return [ids[i] for i in order([tuple(rung[t]) for t in ids], ["max"] * width)]
    return sorted(ids, key=lambda t: -rung[t])


def score(result: dict, objectives: Sequence[tuple[str, str]]) -> Score:
    """A result's score (pure): its signed value of the objective (-inf when not finite), or a
    tuple of them with several objectives."""
    signed = tuple(objective.sign(mode) * value for value, (_, mode) in
                   zip(objective.point(result, objectives), objectives))
    return signed if len(signed) > 1 else signed[0]


__all__ = ["Score", "best_first", "bounds", "crowding", "front", "front_of", "hypervolume", "losses",
           "on_front", "order", "ranks", "score"]
