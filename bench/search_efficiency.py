"""Search efficiency: epochs the default search needs to match random search's best accuracy.

shared/PERFORMANCE.md target 4. On real data (scikit-learn's digits; ResNet-20 at width 0.25,
batch 32, Nesterov, one-cycle; a space of lr, weight decay, augmentation strength, block and
residual merge with a conditional scale), for each seed, three methods search the SAME space
with the same number of trials and max_epochs E through the real product
(`search.run.launch.launch`):

- default: TPE + ASHA, `stopped_trials: pruned` (a trial ASHA stopped is PRUNED in Optuna);
- stock:   TPE + ASHA, `stopped_trials: complete` (Ray's stock OptunaSearch: partial-budget
           scores enter TPE as if final);
- random:  random sampling, FIFO (no early stopping) — the budget B = trials x E epochs.

Target T (per seed) = the best val_acc random search reaches with B. For each method all its
results are ordered by the time the driver received them (an `on_trial_result` callback) and
counted, one result = one epoch, up to the first with val_acc >= T. The target is that the
default needs <= B/5 epochs (median over seeds) and beats stock. A method that never reaches T
is reported as "not reached", with its total epochs and best val_acc.

`trial.max_concurrent` is pinned to the slot count (2 on a 2-core CPU) for every method: with a
custom searcher and no limit, Ray Tune may run one trial at a time (see bench/search_overhead.py),
and concurrency changes what TPE knows when it samples. The training seed (`fixed.seed`) and the
sampler seed both follow the benchmark seed, so the three methods of a seed train identical
configs identically.

    bash .ci/env python bench/search_efficiency.py   # 3 seeds: ~10 min on 2 idle cores, ~18 busy
    bash .ci/env python bench/search_efficiency.py --seeds 1 --trials 9 --epochs 3   # smoke run

Writes bench/results/search_efficiency_digits.json (after every seed) and prints one line.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: make `bench`, `search`, `resnet_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import provenance, write_result
from bench.search_overhead import results_of, run_search
from search.run import provenance as search_provenance

TARGET_RATIO = 0.2
METRIC = "val_acc"

# Each method is a row: the spec sections that differ. Everything else is shared.
METHODS: dict[str, dict[str, Any]] = {
    "default": {"sampler": {"type": "tpe", "stopped_trials": "pruned"},
                "scheduler": {"type": "asha"}},
    "stock": {"sampler": {"type": "tpe", "stopped_trials": "complete"},
              "scheduler": {"type": "asha"}},
    "random": {"sampler": {"type": "random"}, "scheduler": {"type": "fifo"}},
}

SPACE = {
    "lr": {"float": [1e-3, 1.0], "log": True},
    "weight_decay": {"float": [1e-5, 1e-2], "log": True},
    "augment": {"float": [0.0, 1.0]},
    "block": {"choice": ["basic", "preact"]},
    "residual": {"choice": ["add", "scaled"]},
    "residual_scale": {"float": [0.0, 1.0], "when": {"residual": "scaled"}},
}


def method_spec(workdir: Path, method: str, seed: int, *, trials: int, epochs: int,
                slots: int, n_startup: int, grace: int, reduction: float,
                batch_size: int, schedule: str) -> dict:
    row = METHODS[method]
    sampler = {**row["sampler"], "seed": seed}
    if sampler["type"] == "tpe":
        sampler["n_startup_trials"] = n_startup
    scheduler = dict(row["scheduler"])
    if scheduler["type"] == "asha":
        scheduler |= {"grace_period": grace, "reduction_factor": reduction}
    return {
        "name": f"efficiency-{method}-s{seed}",
        "data": {"dataset": "digits", "val_fraction": 0.2},
        "objective": {"metric": METRIC, "mode": "max"},
        "budget": {"trials": trials, "max_epochs": epochs},
        "trial": {"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0,
                  "max_concurrent": slots},
        "sampler": sampler,
        "scheduler": scheduler,
        # The digits demo's recipe: a narrow ResNet-20 with zero-initialised branches idles for
        # its first epochs, and a mirrored digit is another digit (no flip TTA).
        "fixed": {"depth": 20, "width": 0.25, "batch_size": batch_size,
                  "optimizer": "nesterov", "schedule": schedule, "seed": seed,
                  "zero_init_residual": False, "tta": False},
        "space": SPACE,
        "tracking": {"mlflow_uri": f"sqlite:///{workdir / 'mlflow.db'}"},
        "storage_path": str(workdir / "runs"),
    }


def value_of(result: dict) -> float:
    value = result.get(METRIC)
    return value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def epochs_to_target(results: list[dict], target: float) -> Optional[int]:
    """Results (each one epoch, in time order) up to and including the first with
    val_acc >= target; None when none reaches it (pure)."""
    for count, result in enumerate(results, start=1):
        if value_of(result) >= target:
            return count
    return None


def finite(value: float) -> Optional[float]:
    """JSON has no infinity: "not reached" and "no finite value" are written as null."""
    return value if math.isfinite(value) else None


def method_figures(results: list[dict], target: float, budget: int) -> dict:
    reached = epochs_to_target(results, target)
    best = max((value_of(r) for r in results), default=-math.inf)
    return {"epochs_to_target": reached,
            "ratio": reached / budget if reached is not None else None,
            "total_epochs": len(results), "best": finite(best),
            "trials": len({r["trial_id"] for r in results})}


def median_reached(values: list[Optional[float]]) -> Optional[float]:
    """Median where "not reached" (None) counts as worse than any reached value; None when
    the median itself is "not reached"."""
    return finite(statistics.median([math.inf if v is None else v for v in values]))


def versus(ours: dict, other: dict) -> str:
    """'better', 'tie' or 'worse': fewer epochs to the target first, then the higher best."""
    def key(row: dict) -> tuple:
        reached = row["epochs_to_target"]
        return (-(reached if reached is not None else math.inf),
                row["best"] if row["best"] is not None else -math.inf)

    return "better" if key(ours) > key(other) else "tie" if key(ours) == key(other) else "worse"


def run_seed(seed: int, args: argparse.Namespace, slots: int) -> dict:
    per_method: dict[str, dict] = {}
    histories: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-efficiency-s{seed}-") as tmp:
        for method in ("random", "default", "stock"):
            spec = method_spec(Path(tmp), method, seed, trials=args.trials, epochs=args.epochs,
                               slots=slots, n_startup=args.n_startup, grace=args.grace,
                               reduction=args.reduction, batch_size=args.batch_size,
                               schedule=args.schedule)
            began = time.perf_counter()
            run = run_search(spec, verbose=args.verbose)
            histories[method] = results_of(run["events"])
            outcomes: dict[str, int] = {}
            for trial in run["report"].results.trials:
                outcomes[trial.outcome.value] = outcomes.get(trial.outcome.value, 0) + 1
            per_method[method] = {"launch_seconds": time.perf_counter() - began,
                                  "outcomes": outcomes, "load": os.getloadavg()}
    budget = args.trials * args.epochs
    target = max(value_of(r) for r in histories["random"])
    for method, history in histories.items():
        per_method[method] |= method_figures(history, target, budget)
    return {"seed": seed, "target": target, "budget_epochs": budget, "methods": per_method,
            "histories": {m: [[r["trial_id"], r.get("epoch"), finite(value_of(r))] for r in h]
                          for m, h in histories.items()}}


def summarise(seeds: list[dict]) -> dict:
    out: dict[str, Any] = {}
    for method in METHODS:
        rows = [s["methods"][method] for s in seeds]
        bests = [r["best"] for r in rows if r["best"] is not None]
        out[method] = {
            "median_ratio": median_reached([r["ratio"] for r in rows]),
            "median_epochs_to_target": median_reached([r["epochs_to_target"] for r in rows]),
            "reached_seeds": sum(r["epochs_to_target"] is not None for r in rows),
            "median_total_epochs": statistics.median(r["total_epochs"] for r in rows),
            "median_best": statistics.median(bests) if bests else None,
        }
    verdicts = [versus(s["methods"]["default"], s["methods"]["stock"]) for s in seeds]
    out["default_vs_stock"] = {v: verdicts.count(v) for v in ("better", "tie", "worse")}
    return out


def shown(figures: dict, budget: int) -> str:
    if figures["median_ratio"] is None:
        return f"not reached (of {budget} epochs)"
    return (f"{figures['median_epochs_to_target']:g} of {budget} epochs "
            f"(ratio {figures['median_ratio']:.3g})")


def headline(summary: dict, budget: int, seeds: int) -> str:
    d, s = summary["default"], summary["stock"]
    met = d["median_ratio"] is not None and d["median_ratio"] <= TARGET_RATIO
    vs = summary["default_vs_stock"]
    best = " / ".join(f"{summary[m]['median_best']:.3f}" for m in ("default", "stock", "random"))
    return (f"search_efficiency: default reaches random's best in {shown(d, budget)} vs stock "
            f"{shown(s, budget)}, median over {seeds} seeds (target <= {TARGET_RATIO:g}: "
            f"{'met' if met else 'NOT met'}); default vs stock per seed: better {vs['better']}, "
            f"tie {vs['tie']}, worse {vs['worse']}; median best val_acc default / stock / "
            f"random {best}")


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--trials", type=int, default=16, help="trials per method")
    parser.add_argument("--epochs", type=int, default=6, help="max_epochs E")
    # 32 gives 36 steps per epoch on digits' 1,150 training images; at 64 most trials are
    # still at chance after 6 epochs, and the comparison measures noise.
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--schedule", default="onecycle", help="fixed LR schedule")
    parser.add_argument("--n-startup", type=int, default=5, help="TPE random start-up trials")
    parser.add_argument("--grace", type=int, default=1, help="ASHA grace period (epochs)")
    parser.add_argument("--reduction", type=float, default=3.0, help="ASHA reduction factor")
    parser.add_argument("--verbose", action="store_true", help="print trial progress")
    args = parser.parse_args(argv)
    for name in ("seeds", "trials", "epochs"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name} is {getattr(args, name)} but must be >= 1")
    return args


def main(argv: Optional[list[str]] = None) -> dict:
    args = parse_args(argv)
    slots = max(1, os.cpu_count() or 1)  # 1 CPU per trial on a local Ray instance
    budget = args.trials * args.epochs
    load_before = os.getloadavg()
    seeds: list[dict] = []
    payload: dict[str, Any] = {}
    for seed in range(args.seeds):
        seeds.append(run_seed(seed, args, slots))
        m = seeds[-1]["methods"]
        print(f"  seed {seed}: target {seeds[-1]['target']:.3f}; " + "; ".join(
            f"{name} {r['epochs_to_target'] or 'not reached'} / {r['total_epochs']} epochs, "
            f"best {r['best']:.3f}, {r['launch_seconds']:.0f} s" for name, r in m.items()),
            flush=True)
        summary = summarise(seeds)
        payload = {
            "summary": summary,
            "line": headline(summary, budget, len(seeds)),
            "target": {"ratio": TARGET_RATIO, "of": "random search's best val_acc with budget "
                       "B = trials x max_epochs, per seed"},
            "target_met": (summary["default"]["median_ratio"] is not None
                           and summary["default"]["median_ratio"] <= TARGET_RATIO),
            "definitions": {
                "epochs_to_target": "results (one per epoch) in the order the driver received "
                                    "them, up to the first with val_acc >= target; null = not "
                                    "reached",
                "ratio": "epochs_to_target / B; medians count 'not reached' as worse than any "
                         "reached value (null when the median is 'not reached')",
                "default_vs_stock": "per seed: fewer epochs to the target wins, then the "
                                    "higher best val_acc",
            },
            "seeds": seeds,
            "config": {**vars(args), "slots": slots, "budget_epochs": budget,
                       "methods": METHODS, "space": SPACE,
                       "spec_example": method_spec(Path("<tmp>"), "default", 0,
                                                   trials=args.trials, epochs=args.epochs,
                                                   slots=slots, n_startup=args.n_startup,
                                                   grace=args.grace, reduction=args.reduction,
                                                   batch_size=args.batch_size,
                                                   schedule=args.schedule)},
            "load_average": {"before": load_before, "now": os.getloadavg()},
            "provenance": {**provenance("cpu"), "packages": search_provenance.versions()},
        }
        write_result("search_efficiency_digits", payload)
    print(payload["line"])
    return payload


if __name__ == "__main__":
    main()
