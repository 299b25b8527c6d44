"""Search efficiency through real launches: epochs the default search needs to match random
search's best accuracy (PERFORMANCE.md target 4), measured by training, to confirm what
bench/replay.py finds by replaying recorded curves.

For each seed s, each strategy of search/replay/strategies.py (the same rows the replay uses)
searches the spec's space (default: the digits demo, spaces/digits.yaml: its data, fixed recipe,
space and max_epochs E) with T trials through the real product (`search.run.launch.launch`:
Ray Tune, Optuna, ASHA, MLflow into a temporary SQLite file), sampler seed s. `random` (random
sampling, FIFO) defines the seed's target: its best val_acc with B = T x E epochs. All results of a
strategy are ordered by the time the driver received them (an `on_trial_result` callback) and
counted, one result = one epoch, up to the first at least as good as the target. The figures are
search/replay/figures.py's, as in the replay: median and IQR over seeds, default vs stock seed by
seed.

The training seed is the spec's own (as in the recorded table), so a strategy's seeds differ
only in what its sampler proposes, as in the replay. `trial.max_concurrent` is pinned to the
slot count (2 on a 2-core CPU) for every strategy: with a custom searcher and no limit, Ray Tune
may run one trial at a time (bench/search_overhead.py), and concurrency changes what TPE knows
when it samples.

    bash .ci/env python bench/search_efficiency.py --seeds 3 --trials 32   # ~30 min on 2 cores
    bash .ci/env python bench/search_efficiency.py --seeds 1 --trials 4    # smoke run

Writes bench/results/search_efficiency_<spec>_<T>trials.json (after every seed) and prints one
line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: make `bench`, `search`, `resnet_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import provenance, write_result
from bench.launches import results_of, run_search
from search.replay import figures
from search.replay.strategies import BASELINE, COMPARED, STRATEGIES, strategy_spec
from search.run import provenance as search_provenance
from search.spec.model import load_spec

TARGET_RATIO = 0.2
REPO = Path(__file__).resolve().parents[1]


def launch_spec(base: dict, workdir: Path, name: str, row: dict, *, trials: int, seed: int,
                slots: int) -> dict:
    raw = strategy_spec(base, row, trials, seed)
    return {**raw, "name": f"efficiency-{name}-s{seed}",
            "trial": {**raw["trial"], "max_failures": 0, "max_concurrent": slots},
            "tracking": {"mlflow_uri": f"sqlite:///{workdir / 'mlflow.db'}"},
            "storage_path": str(workdir / "runs")}


def run_seed(base: dict, seed: int, names: list[str], args: argparse.Namespace,
             slots: int) -> tuple[dict[str, list], dict[str, dict]]:
    values: dict[str, list] = {}
    details: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-efficiency-s{seed}-") as tmp:
        for name in names:
            spec = launch_spec(base, Path(tmp), name, STRATEGIES[name], trials=args.trials,
                               seed=seed, slots=slots)
            began = time.perf_counter()
            run = run_search(spec, verbose=args.verbose)
            history = results_of(run["events"])
            values[name] = [r.get(base["objective"]["metric"]) for r in history]
            outcomes: dict[str, int] = {}
            for trial in run["report"].results.trials:
                outcomes[trial.outcome.value] = outcomes.get(trial.outcome.value, 0) + 1
            details[name] = {"launch_seconds": time.perf_counter() - began,
                             "outcomes": outcomes, "load": os.getloadavg(),
                             "history": [[r["trial_id"], r.get("epoch"), values[name][i]]
                                         for i, r in enumerate(history)]}
    return values, details


def headline(summary: dict, seeds: int) -> str:
    rows = summary["strategies"]
    budget = summary["budget_epochs"]

    def ratio(name: str) -> str:
        r = rows[name]["ratio"]
        if r["median"] is None:
            return f"not reached in the median ({r['reached']}/{r['of']} seeds)"
        return f"{r['median']:.2f} of B (IQR {r['q25']:.2f}-" + (
            "n/r" if r["q75"] is None else f"{r['q75']:.2f}") + ")"

    met = rows["default"]["ratio"]["median"] is not None and \
        rows["default"]["ratio"]["median"] <= TARGET_RATIO
    paired = summary.get("paired", {})
    best = " / ".join(f"{rows[n]['best']['median']:.3f}" for n in rows)
    # Stock is compared only when it ran (`--strategies` without it: the new methods' cost).
    against = (f" vs stock {ratio('stock')}" if "stock" in rows else "")
    pairs = (f"; default vs stock per seed: better {paired.get('better')}, tie "
             f"{paired.get('tie')}, worse {paired.get('worse')}" if paired else "")
    return (f"search_efficiency: B = {budget} epochs, {seeds} seeds: default reaches random's "
            f"best in {ratio('default')}{against} (target <= {TARGET_RATIO:g}: "
            f"{'met' if met else 'NOT met'}){pairs}; median best {' / '.join(rows)} {best}")


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default=str(REPO / "spaces" / "digits.yaml"),
                        help="whose data, fixed recipe, space and max_epochs to search")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--trials", type=int, default=32, help="trials per strategy (T)")
    parser.add_argument("--strategies", default=",".join(COMPARED),
                        help=f"from {list(STRATEGIES)}; {BASELINE!r} always runs")
    parser.add_argument("--verbose", action="store_true", help="print trial progress")
    args = parser.parse_args(argv)
    for name in ("seeds", "trials"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} is {getattr(args, name)} but must be >= 1")
    unknown = [n for n in args.strategies.split(",") if n not in STRATEGIES]
    if unknown:
        parser.error(f"--strategies has {unknown} but each must be one of {list(STRATEGIES)}")
    return args


def main(argv: Optional[list[str]] = None) -> dict:
    args = parse_args(argv)
    base = load_spec(args.spec).resolved()
    names = [BASELINE] + [n for n in args.strategies.split(",") if n != BASELINE]
    slots = max(1, os.cpu_count() or 1)  # 1 CPU per trial on a local Ray instance
    budget = args.trials * base["budget"]["max_epochs"]
    mode = base["objective"]["mode"]
    values: dict[str, dict[int, list]] = {n: {} for n in names}
    details: dict[int, dict] = {}
    load_before = os.getloadavg()
    payload: dict[str, Any] = {}
    for seed in range(args.seeds):
        by_name, details[seed] = run_seed(base, seed, names, args, slots)
        for name, found in by_name.items():
            values[name][seed] = found
        summary = figures.summarise(values, BASELINE, budget, mode, COMPARED)
        target = summary["targets"][-1]
        print(f"  seed {seed}: target {target:.3f}; " + "; ".join(
            f"{n} {r['per_seed'][-1]['epochs_to_target'] or 'not reached'} / "
            f"{r['per_seed'][-1]['epochs']} epochs, best {r['per_seed'][-1]['best']:.3f}, "
            f"{details[seed][n]['launch_seconds']:.0f} s"
            for n, r in summary["strategies"].items()), flush=True)
        payload = {
            "summary": summary, "line": headline(summary, seed + 1),
            "target": {"ratio": TARGET_RATIO, "of": "random search's best with budget B = "
                       "trials x max_epochs, per seed"},
            "target_met": (summary["strategies"]["default"]["ratio"]["median"] is not None and
                           summary["strategies"]["default"]["ratio"]["median"] <= TARGET_RATIO),
            "seeds": details,
            "config": {**vars(args), "slots": slots, "budget_epochs": budget,
                       "strategies": {n: STRATEGIES[n] for n in names},
                       "spec_example": launch_spec(base, Path("<tmp>"), "default",
                                                   STRATEGIES["default"], trials=args.trials,
                                                   seed=0, slots=slots)},
            "load_average": {"before": load_before, "now": os.getloadavg()},
            "provenance": {**provenance("cpu"), "packages": search_provenance.versions()},
        }
        write_result(f"search_efficiency_{Path(args.spec).stem}_{args.trials}trials", payload)
    print(payload["line"])
    return payload


if __name__ == "__main__":
    main()
