"""The comparison protocol of the published multi-fidelity benchmarks (YAHPO Gym, DEHB, DyHPO,
ifBO), decided here once for every problem:

- budget B in full-training equivalents: FULL_TRAININGS x the problem's max_epochs epochs (LCBench:
  20 x 52 = 1,040), the same for every strategy; a search ends when it has spent B epochs;
- WORKERS asynchronous workers on the benchmark's clock (each epoch of a trial lasts what the
  surrogate says it took; `EpochClock` makes every epoch last 1 s instead), and on epoch counts;
- per task and seed, random search without early stopping (BASELINE) with the same B and seed
  defines the target: its best value;
- per strategy, task and seed: epochs (and virtual seconds) to the target, as a fraction of B
  (seconds: of the baseline's own end on the clock); the best value; the anytime normalised
  regret (figures.regret against the task's known worst and best values) at CHECKPOINTS evenly
  spaced epoch counts, its mean (the area under the curve) and its last value; each strategy's
  rank among those compared on that seed by that mean (anytime) and by the last (final);
- over tasks: medians and IQRs over task x seed with "not reached" worst, mean rank over tasks
  (each task's mean over its seeds), and `COMPARED` paired over task x seed (one-sided Wilcoxon
  on epochs to the target, "not reached" = B + 1, and on mean regret).
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping, Optional, Sequence

from search.replay import figures, simulator
from search.replay.predict import Curve
from search.replay.problems.spec import ProblemFile, problem_search
from search.replay.strategies import BASELINE, COMPARED

FULL_TRAININGS = 20
WORKERS = 4
SEEDS = 10
CHECKPOINTS = 100


def budget(max_epochs: int) -> int:
    return FULL_TRAININGS * max_epochs


def checkpoints(budget_epochs: int, count: int = CHECKPOINTS) -> list[int]:
    """`count` epoch counts evenly spaced over (0, B], B last (pure)."""
    return sorted({max(1, round(budget_epochs * k / count)) for k in range(1, count + 1)})


class EpochClock:
    """A task whose every epoch lasts 1 s: the search in epoch counts, whatever the clock."""

    def __init__(self, evaluator: Any) -> None:
        self.evaluator = evaluator
        self.metric, self.mode = evaluator.metric, evaluator.mode
        self.max_epochs = evaluator.max_epochs

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        curve = self.evaluator(params)
        return Curve(curve.values, [1.0] * len(curve.values), curve.diverged)


def search(problem: ProblemFile, evaluator: Any, row: Mapping[str, Any], seed: int,
           workers: int, budget_epochs: int) -> simulator.Replay:
    """One strategy's search of one task with budget B (a trial costs at least one epoch, so B
    trials never bind)."""
    searched = problem_search(problem, evaluator, row, trials=budget_epochs, seed=seed)
    return simulator.replay(searched, evaluator, workers, budget_epochs=budget_epochs)


def seed_records(problem: ProblemFile, evaluator: Any, strategies: Mapping[str, Mapping],
                 seed: int, workers: int, budget_epochs: int,
                 reference: tuple[float, float]) -> dict[str, dict]:
    """Every strategy's figures on one task and seed (BASELINE among `strategies`)."""
    mode = evaluator.mode
    at = checkpoints(budget_epochs)
    runs = {name: search(problem, evaluator, row, seed, workers, budget_epochs)
            for name, row in strategies.items()}
    baseline = runs[BASELINE]
    target = figures.best([r.value for r in baseline.results], mode)
    worst, best = reference
    out: dict[str, dict] = {}
    for name, run in runs.items():
        values = [r.value for r in run.results]
        times = [r.time for r in run.results]
        reached = figures.epochs_to_target(values, target, mode)
        seconds = figures.seconds_to_target(values, times, target, mode)
        curve = [figures.regret(v, worst, best, mode)
                 for v in figures.checkpoints(values, at, mode)]
        out[name] = {
            "epochs_to_target": reached,
            "ratio": None if reached is None else reached / budget_epochs,
            "seconds_to_target": seconds,
            "seconds_ratio": None if seconds is None else seconds / baseline.end,
            "best": figures.best(values, mode), "trials": len(run.trials),
            "epochs": len(values), "end_seconds": run.end,
            **anatomy(run, evaluator.max_epochs),
            "regret": [round(r, 5) for r in curve],
            "regret_mean": statistics.fmean(curve), "regret_final": curve[-1],
        }
    for key, measure in (("rank_anytime", "regret_mean"), ("rank_final", "regret_final")):
        for name, rank in figures.ranks({n: r[measure] for n, r in out.items()}).items():
            out[name][key] = rank
    return out


def anatomy(run: simulator.Replay, max_epochs: int) -> dict:
    """Where a search's epochs went: how many trials ran to max_epochs, how many stopped after
    their first epoch, and the share of all epochs spent in trials that ran to the end."""
    lengths = [trial.epoch for trial in run.trials.values() if trial.epoch]
    full = [n for n in lengths if n >= max_epochs]
    return {"trials_full": len(full), "trials_one_epoch": sum(n == 1 for n in lengths),
            "share_epochs_in_full": sum(full) / max(1, sum(lengths))}


def _band(curves: Sequence[Sequence[float]]) -> dict[str, list[float]]:
    return {name: [round(figures.quantile([c[i] for c in curves], q), 5)
                   for i in range(len(curves[0]))]
            for name, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75))}


def summarise(records: Mapping[str, Mapping[str, Sequence[dict]]], budget_epochs: int,
              mode: str, compared: tuple[str, str] = COMPARED) -> dict:
    """Figures over tasks. `records`: task -> strategy -> one record per seed (seed_records),
    seeds in the same order for every strategy of a task."""
    tasks = sorted(records)
    names = list(next(iter(records.values())))
    out: dict[str, Any] = {"tasks": tasks, "seeds": len(records[tasks[0]][names[0]]),
                           "budget_epochs": budget_epochs, "checkpoints":
                           checkpoints(budget_epochs), "strategies": {}, "per_task": {}}
    for name in names:
        rows = [r for t in tasks for r in records[t][name]]
        out["strategies"][name] = {
            "ratio": figures.spread([r["ratio"] for r in rows]),
            "seconds_ratio": figures.spread([r["seconds_ratio"] for r in rows]),
            "best": figures.spread([r["best"] for r in rows]),
            "trials": figures.spread([r["trials"] for r in rows]),
            **{key: figures.spread([r[key] for r in rows]) for key in
               ("trials_full", "trials_one_epoch", "share_epochs_in_full") if key in rows[0]},
            "mean_rank_anytime": statistics.fmean(
                statistics.fmean(r["rank_anytime"] for r in records[t][name]) for t in tasks),
            "mean_rank_final": statistics.fmean(
                statistics.fmean(r["rank_final"] for r in records[t][name]) for t in tasks),
            "regret_mean": figures.spread([r["regret_mean"] for r in rows]),
            "regret_final": figures.spread([r["regret_final"] for r in rows]),
            "regret_band": _band([r["regret"] for r in rows]),
        }
    for task in tasks:
        out["per_task"][task] = {name: {
            "ratio": figures.spread([r["ratio"] for r in records[task][name]]),
            "regret_mean": statistics.median(r["regret_mean"] for r in records[task][name]),
            "rank_anytime": statistics.fmean(r["rank_anytime"] for r in records[task][name]),
        } for name in names}
    ours, other = compared
    if ours in names and other in names:
        mine = [r for t in tasks for r in records[t][ours]]
        theirs = [r for t in tasks for r in records[t][other]]
        verdicts = [figures.versus(a, b, mode) for a, b in zip(mine, theirs)]

        def cost(r: dict) -> float:
            return budget_epochs + 1 if r["epochs_to_target"] is None else r["epochs_to_target"]

        out["paired"] = {
            "ours": ours, "other": other, "pairs": len(mine),
            "better": verdicts.count("better"), "tie": verdicts.count("tie"),
            "worse": verdicts.count("worse"),
            "wilcoxon_p_less_epochs": figures.wilcoxon_less([cost(r) for r in mine],
                                                            [cost(r) for r in theirs]),
            "wilcoxon_p_less_regret": figures.wilcoxon_less([r["regret_mean"] for r in mine],
                                                            [r["regret_mean"] for r in theirs]),
        }
    return out


def reached_share(spread: Mapping[str, Any]) -> Optional[float]:
    return spread["reached"] / spread["of"] if spread.get("of") else None
