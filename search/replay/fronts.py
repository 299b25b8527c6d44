"""The comparison protocol of a search of several objectives (issue 21), decided here once for
every problem; the single-objective one is search/replay/protocol.py, whose budget and workers
it keeps.

- A task is searched for its learning metric against costs (NAS-Bench-201: accuracy against
  inference latency and size; digits: accuracy against cumulative training seconds). Each
  objective is scaled to [0, 1] over the task's RANGES, 0 its best and 1 its worst value over the
  whole space (NAS-Bench-201: every one of its 15,625 cells) or over the recorded table (digits:
  every recorded trial at its last epoch); the hypervolume is then measured against the
  reference point (1, ..., 1), so that 1.0 is the whole box and tasks are comparable. A point
  better than the range's best counts as its best; one not better than the reference in every
  objective adds nothing.
- What a search found is the point of each trial that ran to max_epochs: a recipe a user can
  retrain. A trial that did not (stopped or paused by the scheduler, or out when the budget was
  spent: `trials_short`) has a point at a lower fidelity; the hypervolume with those points too
  (`hv_any_epoch`, each trial at its last epoch) is reported apart, never in the comparison.
- Per strategy, task and seed: the hypervolume after each of CHECKPOINTS epoch counts evenly
  spaced over the strategy's own budget (a multiple of B), the final one, the trials, how many
  ran to the end and how many were stopped.
- Over task x seed: medians and IQRs; `COMPARED` pairs (the default with budget B against
  NSGA-II without early stopping with 3B, and against random with B) seed by seed: better, tie,
  worse, and the one-sided Wilcoxon p-value that the default's hypervolume is larger.
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping, Sequence

from search.engine import pareto
from search.replay import figures, protocol, simulator
from search.replay.problems.spec import ProblemFile, problem_search

CHECKPOINTS = 20
# (the default, each baseline it must reach): issue 21's measure
COMPARED = (("default", "nsga2_3b"), ("default", "random"))

Ranges = Sequence[tuple[float, float]]  # per objective (best, worst) in its own units


def ranges(points: Sequence[Sequence[float]], modes: Sequence[str]) -> list[tuple[float, float]]:
    """The box: (best, worst) of each objective over `points` (pure)."""
    return pareto.bounds(points, modes)


def scaled(point: Sequence[float], box: Ranges) -> tuple[float, ...]:
    """A point as losses in [0, 1] per objective: 0 the range's best, 1 its worst; better than
    the best is the best, worse than the worst stays worse (pure)."""
    out = []
    for value, (best, worst) in zip(point, box):
        loss = (float(value) - best) / (worst - best) if worst != best else 0.0
        out.append(max(0.0, loss))
    return tuple(out)


def volume(points: Sequence[Sequence[float]], box: Ranges) -> float:
    """The hypervolume of `points` scaled into the box, against (1, ..., 1): in [0, 1]."""
    if not points:
        return 0.0
    width = len(box)
    return pareto.hypervolume([scaled(p, box) for p in points], ["min"] * width, (1.0,) * width)


def trace(run: simulator.Replay, max_epochs: int, box: Ranges,
          at: Sequence[int]) -> list[float]:
    """The hypervolume of the trials that had run to max_epochs after each epoch count of `at`
    (ascending)."""
    found: list[tuple[float, ...]] = []
    out = []
    results = iter(enumerate(run.results, start=1))
    for count in at:
        for spent, result in results:
            if result.epoch >= max_epochs:
                found.append(result.point)
            if spent == count:
                break
        out.append(volume(found, box))
    return out


def seed_records(problem: ProblemFile, evaluator: Any, strategies: Mapping[str, Mapping],
                 seed: int, workers: int, budget_epochs: int, also: Sequence[tuple[str, str]],
                 box: Ranges) -> dict[str, dict]:
    """Every strategy's figures on one task and seed. `strategies`: name -> {"row": its
    sampler and scheduler sections, "budget": its multiple of B}."""
    max_epochs = evaluator.max_epochs
    out = {}
    for name, strategy in strategies.items():
        spend = int(strategy["budget"] * budget_epochs)
        searched = problem_search(problem, evaluator, strategy["row"], trials=spend, seed=seed,
                                  also=also)
        run = simulator.replay(searched, evaluator, workers, budget_epochs=spend)
        curve = trace(run, max_epochs, box, protocol.checkpoints(spend, CHECKPOINTS))
        full = sum(t.epoch >= max_epochs for t in run.trials.values())
        last = {r.trial_id: r.point for r in run.results}
        out[name] = {"hv": curve[-1], "hv_trace": [round(v, 5) for v in curve],
                     "hv_any_epoch": volume(list(last.values()), box),
                     "trials": len(run.trials), "epochs": run.epochs,
                     "trials_full": full, "trials_short": len(last) - full}
    return out


def summarise(records: Mapping[str, Mapping[str, Sequence[dict]]],
              compared: Sequence[tuple[str, str]] = COMPARED) -> dict:
    """Figures over tasks. `records`: task -> strategy -> one record per seed, seeds in the same
    order for every strategy of a task."""
    tasks = sorted(records)
    names = list(records[tasks[0]])
    out: dict[str, Any] = {"tasks": tasks, "seeds": len(records[tasks[0]][names[0]]),
                           "strategies": {}, "per_task": {}, "paired": []}
    for name in names:
        rows = [r for t in tasks for r in records[t][name]]
        out["strategies"][name] = {
            key: figures.spread([r[key] for r in rows])
            for key in ("hv", "hv_any_epoch", "trials", "trials_full", "trials_short")}
    for task in tasks:
        out["per_task"][task] = {name: figures.spread([r["hv"] for r in records[task][name]])
                                 for name in names}
    for ours, other in compared:
        if ours not in names or other not in names:
            continue
        mine = [r["hv"] for t in tasks for r in records[t][ours]]
        theirs = [r["hv"] for t in tasks for r in records[t][other]]
        out["paired"].append({
            "ours": ours, "other": other, "pairs": len(mine),
            "better": sum(a > b for a, b in zip(mine, theirs)),
            "tie": sum(a == b for a, b in zip(mine, theirs)),
            "worse": sum(a < b for a, b in zip(mine, theirs)),
            "median_ours": statistics.median(mine), "median_other": statistics.median(theirs),
            "wilcoxon_p_greater": figures.wilcoxon_less([-v for v in mine],
                                                        [-v for v in theirs]),
            "per_task_median_at_least": {
                t: statistics.median(r["hv"] for r in records[t][ours])
                >= statistics.median(r["hv"] for r in records[t][other]) for t in tasks}})
    return out
