"""Replay a learning-curve table through the product's real searchers and schedulers: search
efficiency (PERFORMANCE.md target 4) over many seeds in minutes, without training.

For each budget (trials T x the table's max_epochs E = B epochs) and seed s, every strategy
runs the same search a launch would (search/replay/simulator.py) with sampler seed s and
`--workers` trials at a time; `random` (random sampling, FIFO: no early stopping) defines the
seed's target, the best value it reaches with B. Per strategy: epochs to that target (and as a
fraction of B), the best value, the anytime curve (best after each epoch spent); medians and
interquartile ranges over seeds; default vs stock seed by seed (wins/ties/losses, one-sided
Wilcoxon signed-rank). `--grid` replays every combination of the knobs a default is chosen
from instead (n_startup, grace, reduction, brackets, stopped).

    bash .ci/env python bench/replay.py bench/curves/digits.jsonl --seeds 100 --trials 16,32,64
    bash .ci/env python bench/replay.py bench/curves/digits.jsonl --holdout   # predictors
    bash .ci/env python bench/replay.py bench/curves/digits.jsonl --seeds 50 --trials 32 \\
        --grid n_startup=3,5,10 grace=1,2 reduction=2,3,4 brackets=1,2 stopped=pruned,complete

Writes bench/results/replay_<table>.json (and .png: anytime curves and epochs to target).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: make `bench`, `search` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, provenance, pyplot, write_result
from search.replay import figures, predict, simulator, table
from search.replay.strategies import (BASELINE, COMPARED, KNOBS, STRATEGIES, grid,
                                      strategy_spec)
from search.run import provenance as search_provenance
from search.spec.model import SearchSpec, parse_spec

# ---- one replayed search per task; the table's predictor is fitted once per process ----

_PROCESS: dict[str, Any] = {}


def opened(path: str | Path) -> tuple[table.Table, SearchSpec, list[table.Row]]:
    """A table, the spec it was recorded from, and its rows with a curve to replay."""
    found = table.read(path)
    return found, parse_spec(found.spec), table.completed(found)


def _start(path: str, predictor: str) -> None:
    found, spec, rows = opened(path)
    _PROCESS.update(table=found, predictor=predict.fit(predictor, spec.space, rows, found.metric,
                                                       found.max_epochs))


def run_one(task: tuple[str, dict, int, int, int]) -> tuple[str, int, int, list[float], float]:
    name, row, trials, seed, workers = task
    found: table.Table = _PROCESS["table"]
    spec = parse_spec(strategy_spec(found.spec, row, trials, seed))
    began = time.perf_counter()
    replayed = simulator.replay(spec, _PROCESS["predictor"], workers)
    return name, trials, seed, [r.value for r in replayed.results], time.perf_counter() - began


def shown(value: Optional[float]) -> str:
    return "n/r" if value is None else f"{value:.2f}"


def line(summary: dict, name: str) -> str:
    row = summary["strategies"][name]
    ratio = row["ratio"]
    return (f"{name:>34s}: epochs to random's best / B median {shown(ratio['median'])} "
            f"[IQR {shown(ratio['q25'])}-{shown(ratio['q75'])}] ({ratio['reached']}/"
            f"{ratio['of']} reach); best {row['best']['median']:.3f}; epochs spent "
            f"{row['epochs_spent']['median']:g}")


def plot(report: dict, path: Path, mode: str) -> None:
    plt = pyplot()

    budgets = report["budgets"]
    fig, axes = plt.subplots(2, len(budgets), figsize=(5.5 * len(budgets), 8.5), squeeze=False)
    for column, summary in enumerate(budgets):
        budget = summary["budget_epochs"]
        top, bottom = axes[0][column], axes[1][column]
        epochs = list(range(1, budget + 1))
        for name, row in summary["strategies"].items():
            median = row["anytime"]["median"]
            top.plot(epochs, [float("nan") if v is None else v for v in median], label=name)
            top.fill_between(epochs, [float("nan") if v is None else v
                                      for v in row["anytime"]["q25"]],
                             [float("nan") if v is None else v for v in row["anytime"]["q75"]],
                             alpha=0.15)
        top.axvline(budget / 5, color="grey", linestyle="--", linewidth=1, label="B/5")
        target = summary["strategies"][BASELINE]["best"]["median"]
        top.axhline(target, color="black", linestyle=":", linewidth=1,
                    label="random's best at B (median)")
        top.set_title(f"{summary['trials']} trials, B = {budget} epochs, "
                      f"{summary['seeds']} seeds")
        top.set_xlabel("epochs spent")
        top.set_ylabel(f"best {report['metric']} so far (median, IQR band)")
        low = min(v for r in summary["strategies"].values() for v in r["anytime"]["median"]
                  if v is not None)
        top.set_ylim(max(low, target - 0.15) if mode == "max" else None, None)
        names = list(summary["strategies"])
        data = [[r["ratio"] if r["ratio"] is not None else 1.05
                 for r in summary["strategies"][n]["per_seed"]] for n in names]
        bottom.boxplot(data, showfliers=True)
        bottom.set_xticks(range(1, len(names) + 1), names, rotation=20)
        bottom.axhline(0.2, color="grey", linestyle="--", linewidth=1)
        bottom.set_ylabel("epochs to random's best / B (1.05 = not reached)")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("table", type=Path, help="a table written by bench/record_curves.py")
    parser.add_argument("--seeds", type=int, default=50, help="seeds 0..N-1")
    parser.add_argument("--trials", default="32", help="comma-separated trial counts (budgets)")
    parser.add_argument("--workers", type=int, default=2, help="trials at a time (slots)")
    parser.add_argument("--predictor", default="forest", choices=list(predict.PREDICTORS),
                        help="what a proposed configuration trains to (bench/README.md says which"
                             " predicts held-out curves best)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help=f"comma-separated, from {list(STRATEGIES)}")
    parser.add_argument("--grid", nargs="+", metavar="KNOB=V1,V2",
                        help=f"replay TPE + ASHA over these knobs ({list(KNOBS)}) instead")
    parser.add_argument("--holdout", action="store_true",
                        help="only measure how well each predictor predicts held-out curves")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--name", help="result file name (default: replay_<table>[_grid])")
    return parser.parse_args(argv)


def holdout(path: Path) -> dict:
    found, spec, rows = opened(path)
    report = {name: predict.holdout(name, spec.space, rows, found.metric, found.max_epochs)
              for name in predict.PREDICTORS}
    for name, row in report.items():
        print(f"  {name:8s} mae_curve {row['mae_curve']:.4f}  mae_final {row['mae_final']:.4f}  "
              f"spearman_final {row['spearman_final']:.3f}  ({row['rows']} rows, "
              f"{row['folds']}-fold)")
    return report


def main(argv: Optional[list[str]] = None) -> dict:
    args = parse_args(argv)
    name = args.name or f"replay_{args.table.stem}" + ("_grid" if args.grid else "")
    if args.holdout:
        payload = {"holdout": holdout(args.table), "table": str(args.table),
                   "provenance": {**provenance("cpu"), "packages": search_provenance.versions()}}
        write_result(f"{name}_holdout", payload)
        return payload
    found = table.read(args.table)
    try:
        rows = grid(args.grid) if args.grid else {n: STRATEGIES[n]
                                                  for n in args.strategies.split(",")}
    except (ValueError, KeyError) as problem:
        raise SystemExit(f"replay: {problem}") from None
    rows = {**rows, BASELINE: STRATEGIES[BASELINE]}
    budgets = [int(t) for t in args.trials.split(",")]
    tasks = [(n, row, t, s, args.workers) for t in budgets for s in range(args.seeds)
             for n, row in rows.items()]
    began = time.perf_counter()
    values: dict[int, dict[str, dict[int, list[float]]]] = {t: {n: {} for n in rows}
                                                          for t in budgets}
    seconds: list[float] = []
    with ProcessPoolExecutor(args.processes, mp_context=get_context("fork"),
                             initializer=_start, initargs=(str(args.table), args.predictor)) as pool:
        for n, t, s, results, took in pool.map(run_one, tasks, chunksize=4):
            values[t][n][s] = results
            seconds.append(took)
    wall = time.perf_counter() - began
    report: dict[str, Any] = {"table": str(args.table), "rows": len(table.completed(found)),
                              "metric": found.metric, "mode": found.mode,
                              "max_epochs": found.max_epochs, "predictor": args.predictor,
                              "workers": args.workers, "strategies": rows, "budgets": []}
    for t in budgets:
        summary = figures.summarise(values[t], BASELINE, t * found.max_epochs, found.mode,
                                    COMPARED)
        summary["trials"] = t
        report["budgets"].append(summary)
        print(f"replay: {t} trials x {found.max_epochs} epochs = B {t * found.max_epochs}, "
              f"{args.seeds} seeds, predictor {args.predictor}, {args.workers} workers")
        for n in sorted(rows, key=lambda n: (summary["strategies"][n]["ratio"]["median"] or 9,
                                             n)):
            print(line(summary, n))
        if "paired" in summary:
            p = summary["paired"]
            print(f"  default vs stock per seed: better {p['better']}, tie {p['tie']}, worse "
                  f"{p['worse']}; Wilcoxon one-sided p = {p['wilcoxon_p_less']}")
    report |= {"searches": len(tasks), "wall_seconds": wall,
               "median_search_seconds": sorted(seconds)[len(seconds) // 2],
               "torch_loaded": "torch" in sys.modules,
               "provenance": {**provenance("cpu"), "packages": search_provenance.versions()}}
    write_result(name, report)
    if not args.grid:
        plot(report, RESULTS / f"{name}.png", found.mode)
    print(f"replay: {len(tasks)} searches in {wall:.0f} s on {args.processes} processes "
          f"-> bench/results/{name}.json")
    return report


if __name__ == "__main__":
    main()
