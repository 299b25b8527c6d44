"""Overhead around trials: how much of a search's wall time the slots spend training.

shared/PERFORMANCE.md target 3. A search of short trials (real digits, ResNet-20 at width 0.25,
3 epochs, random sampler, FIFO, 1 CPU per trial) runs through the real product
(`search.run.launch.launch`: Ray Tune + Optuna + the MLflow mirror) once per arm (rows of `ARMS`):

- ours: `reuse_actors=True` — a trial's worker process is reused by the next trial and keeps
  its dataset cached (`search.run.trainable.cached_data`);
- glue: `reuse_actors=False` — a fresh worker process per trial that re-imports torch and
  re-loads the dataset, as the usual Tune + PyTorch tutorial pipeline does;
- ours_mc / glue_mc: the same with `trial.max_concurrent` set to the slot count (see `ARMS`).

Figures, from a driver-side callback (trial start / result / end clocks) and the `started_at`
every result carries (the worker's clock just before its first training step):

- efficiency = sum of `epoch_seconds` over all results / (span x slots), where span runs from the
  first `on_trial_start` to the last trial end. This is the figure the target (>= 0.8) uses.
  The same ratio over the wall time of the whole `launch()` call (Ray start, MLflow set-up and
  shut-down included) is reported beside it.
- delay = `started_at` - the trial's `on_trial_start`: median and max. The target (<= 1 s) is
  for warm workers, so the headline median skips the first `slots` trials, which start cold in
  both arms. Ray calls `on_trial_start` only once a trial's process is up, so the glue arm's
  process start is not inside its delay; `handoff` (a slot freed by a trial's end -> the next
  trial's first step) is, and is reported too.

    bash .ci/env python bench/search_overhead.py            # ~8 min on a 2-core CPU
    bash .ci/env python bench/search_overhead.py --arms ours,glue --trials 6

Writes bench/results/search_overhead_cpu.json and prints the headline line (product
defaults) after the max_concurrent=slots line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `bench`, `search`, `resnet_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import provenance, write_result
from bench.launches import results_of, run_search
from search.run import provenance as search_provenance

TARGET_EFFICIENCY = 0.8
TARGET_DELAY_S = 1.0


def overhead_figures(events: list[dict], slots: int, launch_seconds: float) -> dict:
    """Efficiency, delay and handoff of one search from its event log (pure)."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for row in events:
        if row["event"] == "start":
            starts.setdefault(row["trial_id"], row["t"])
        elif row["event"] == "end":
            ends[row["trial_id"]] = row["t"]
    results = results_of(events)
    first_step = {}
    for row in results:
        if row.get("started_at") is not None:
            first_step.setdefault(row["trial_id"], row["started_at"])
    if not starts or not ends or not results:
        raise ValueError(f"events hold {len(starts)} starts, {len(ends)} ends and "
                         f"{len(results)} results but each must be >= 1")
    training = sum(r.get("epoch_seconds") or 0.0 for r in results)
    span = max(ends.values()) - min(starts.values())
    order = sorted(starts, key=starts.get)
    delays = [first_step[t] - starts[t] for t in order if t in first_step]
    warm = [first_step[t] - starts[t] for t in order[slots:] if t in first_step]
    # The k-th trial to start (k >= slots) takes the slot that the (k - slots)-th end freed.
    freed = sorted(ends.values())
    handoffs = [first_step[t] - freed[k] for k, t in enumerate(order[slots:])
                if t in first_step and k < len(freed)]
    return {
        "trials": len(starts), "results": len(results), "slots": slots,
        "training_seconds": training, "span_seconds": span, "launch_seconds": launch_seconds,
        "efficiency": training / (span * slots),
        "efficiency_launch": training / (launch_seconds * slots),
        "delay_median_s": statistics.median(warm or delays), "delay_max_s": max(warm or delays),
        "delay_all_median_s": statistics.median(delays), "delay_all_max_s": max(delays),
        "handoff_median_s": statistics.median(handoffs) if handoffs else None,
        "handoff_max_s": max(handoffs) if handoffs else None,
        "delays_s": delays,
    }


def overhead_spec(workdir: Path, name: str, *, trials: int, epochs: int, dataset: str,
                  max_concurrent: int | None = None) -> dict:
    """Short trials of a small real model: the regime where overhead around trials dominates."""
    return {
        "name": name,
        "data": {"dataset": dataset, "val_fraction": 0.2, "synthetic_size": 1024},
        "objective": {"metric": "val_acc", "mode": "max"},
        "budget": {"trials": trials, "max_epochs": epochs},
        "trial": {"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0,
                  "max_concurrent": max_concurrent},
        "sampler": {"type": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        "fixed": {"depth": 20, "width": 0.25, "batch_size": 128, "optimizer": "nesterov",
                  "schedule": "onecycle", "augment": 0.0},
        "space": {"lr": {"float": [0.01, 0.5], "log": True}},
        "tracking": {"mlflow_uri": f"sqlite:///{workdir / 'mlflow.db'}"},
        "storage_path": str(workdir / "runs"),
    }


# Each arm is a row: how the product is launched. `max_concurrent: None` is the product's
# default; "slots" pins `trial.max_concurrent` to the slot count. The `_mc` rows exist because,
# with a custom searcher and no concurrency limit, Ray Tune keeps one trial pending at a time
# (TUNE_MAX_PENDING_TRIALS_PG "auto" -> 1): a second worker is only requested once the first
# trial runs, and with reuse_actors it is discarded in favour of the first one's cached worker
# if that frees up before the new process has started (~10 s to import torch on a busy 2-core
# box), so one slot can stay idle for the whole search.
ARMS: dict[str, dict[str, Any]] = {
    "ours": {"reuse_actors": True, "max_concurrent": None},
    "glue": {"reuse_actors": False, "max_concurrent": None},
    "ours_mc": {"reuse_actors": True, "max_concurrent": "slots"},
    "glue_mc": {"reuse_actors": False, "max_concurrent": "slots"},
}
FIGURES = ("efficiency", "efficiency_launch", "delay_median_s", "delay_max_s",
           "delay_all_median_s", "handoff_median_s", "handoff_max_s", "span_seconds",
           "launch_seconds", "training_seconds")


def summary_of(runs: list[dict]) -> dict:
    """Median over the rounds of one arm (None where a figure is missing)."""
    out = {}
    for key in FIGURES:
        values = [run[key] for run in runs if run.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    return out


def line(name: str, ours: dict, glue: dict) -> str:
    ratio = ours["efficiency"] / glue["efficiency"]
    met = ours["efficiency"] >= TARGET_EFFICIENCY and ours["delay_median_s"] <= TARGET_DELAY_S
    return (f"{name}: ours efficiency {ours['efficiency']:.3f} (delay median "
            f"{ours['delay_median_s']:.3f} s) vs glue {glue['efficiency']:.3f} "
            f"({glue['delay_median_s']:.3f} s) -> ratio {ratio:.3g} (target >=0.8, <=1 s"
            f"{': met' if met else ': NOT met'})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="digits", choices=["digits", "synthetic"])
    parser.add_argument("--arms", default=",".join(ARMS),
                        help=f"comma-separated rows of ARMS (default: all of {list(ARMS)})")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds over the arms; the order reverses every round")
    parser.add_argument("--verbose", action="store_true", help="print trial progress")
    args = parser.parse_args(argv)
    args.arms = args.arms.split(",")
    if args.rounds < 1:
        raise ValueError(f"rounds is {args.rounds} but must be >= 1")
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown or not {"ours", "glue"} <= set(args.arms):
        raise ValueError(f"arms is {args.arms} but must include ours and glue and only name "
                         f"{list(ARMS)}")
    return args


DEFINITIONS = {
    "efficiency": "sum(epoch_seconds of all results) / ((last trial end - first on_trial_start) "
                  "x slots); the target uses this one",
    "efficiency_launch": "the same sum / (wall seconds of the launch() call x slots): Ray "
                         "start, MLflow set-up and shut-down included",
    "delay": "started_at (worker, before the first training step) - on_trial_start (driver); "
             "headline median/max skip the first `slots` (cold) trials",
    "handoff": "started_at of the k-th trial to start - the (k-slots)-th trial end: includes "
               "process start and dataset load for glue",
    "summary": "each figure is the median over the rounds of that arm",
}


def run_arms(args: argparse.Namespace, slots: int) -> dict[str, list[dict]]:
    """Every arm once per round, the order reversed every other round."""
    runs: dict[str, list[dict]] = {arm: [] for arm in args.arms}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for r in range(args.rounds):
            for arm in (args.arms if r % 2 == 0 else args.arms[::-1]):
                row = ARMS[arm]
                limit = slots if row["max_concurrent"] == "slots" else None
                spec = overhead_spec(Path(tmp), f"overhead-{arm}-{r}", trials=args.trials,
                                     epochs=args.epochs, dataset=args.dataset,
                                     max_concurrent=limit)
                run = run_search(spec, reuse_actors=row["reuse_actors"], verbose=args.verbose)
                figures = overhead_figures(run["events"], run["slots"], run["launch_seconds"])
                runs[arm].append({"round": r, "max_concurrent": limit, "load": os.getloadavg(),
                                  **figures})
                print(f"  round {r} {arm}: efficiency {figures['efficiency']:.3f} (launch "
                      f"{figures['efficiency_launch']:.3f}), delay median "
                      f"{figures['delay_median_s']:.3f} s, handoff median "
                      f"{figures['handoff_median_s'] or float('nan'):.3f} s, "
                      f"{figures['span_seconds']:.1f} s span", flush=True)
    return runs


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    slots = max(1, (os.cpu_count() or 1))  # 1 CPU per trial on a local Ray instance
    load_before = os.getloadavg()
    runs = run_arms(args, slots)
    summary = {arm: summary_of(runs[arm]) for arm in args.arms}
    ours, glue = summary["ours"], summary["glue"]
    lines = [line("search_overhead", ours, glue)]
    if {"ours_mc", "glue_mc"} <= set(args.arms):
        lines.insert(0, line("search_overhead (max_concurrent=slots)", summary["ours_mc"],
                             summary["glue_mc"]))
    payload = {
        "summary": summary,
        "efficiency_ratio": ours["efficiency"] / glue["efficiency"],
        "target": {"efficiency": TARGET_EFFICIENCY, "delay_s": TARGET_DELAY_S},
        "target_met": (ours["efficiency"] >= TARGET_EFFICIENCY
                       and ours["delay_median_s"] <= TARGET_DELAY_S),
        "lines": lines,
        "arms": {arm: ARMS[arm] for arm in args.arms},
        "definitions": DEFINITIONS,
        "runs": runs,
        "config": {**vars(args), "slots": slots, "spec": overhead_spec(
            Path("<tmp>"), "overhead-<arm>-<round>", trials=args.trials, epochs=args.epochs,
            dataset=args.dataset)},
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "provenance": {**provenance("cpu"), "packages": search_provenance.versions()},
    }
    write_result("search_overhead_cpu", payload)
    print("\n".join(lines))
    return payload


if __name__ == "__main__":
    main()
