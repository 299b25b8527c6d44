"""Warm start in the replay (issue 22's target on digits): a search warm-started from the digits
table's first 32 trials reaches the cold search's final best in <= 50 % of the budget B.

For each budget (trials T x the table's max_epochs E = B epochs) and seed s, the product's
default search when it was measured (TPE + ASHA, search/replay/strategies.py) runs twice on the
same predictor with sampler seed s: cold, and warm-started (search/engine/warm.py: the first
`--from` rows of the table, in the order they were recorded, told to its study exactly as a
launch tells an earlier experiment's trials). The cold search's final best is the seed's target; the warm search's epochs
to it, as a fraction of B, is the figure (median and IQR over seeds; a seed it never reaches
counts as not reached and sorts last). Only epochs the new search trains count: the told trials'
own values reach nothing.

    python bench/warm_start.py bench/curves/digits.jsonl --seeds 50 --trials 16,32 --from 32

Writes bench/results/warm_start_<table>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: make `bench`, `search` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result
from search.engine.warm import Earlier, knowledge
from search.spec.outcome import Outcome
from search.experiment.results import Results, TrialRecord
from search.replay import figures, predict, simulator, table
from search.replay.strategies import STRATEGIES, strategy_spec
from search.spec import objective
from search.spec.model import parse_spec

# TPE + ASHA: the product's default when issue 22 measured warm starts, as bench/README.md
# publishes them (the default is TPE + promotion ASHA since; rerun with it to see its figures).
STRATEGY = "tpe_asha"


def earlier_results(rows: list[table.Row], metric: str, mode: str) -> Results:
    """Table rows as the record of an earlier experiment (best first, as the record lists
    them): each a trial that ran its recorded epochs and ended as recorded."""
    trials = []
    for row in rows:
        curve = row.curve(metric)
        finite = [v for v in curve if objective.finite(v)]
        trials.append(TrialRecord(
            trial_id=f"row{row.index}", params=dict(row.params), config={},
            results=[{"epoch": e, metric: v} for e, v in enumerate(curve, 1)],
            status="TERMINATED", error=None, checkpoint=None, outcome=Outcome(row.outcome),
            best=objective.best(finite, mode) if finite else None, epochs=len(curve),
            metric=metric))
    ranked = sorted(trials, key=lambda t: -figures.score(t.best, mode))
    return Results(metric=metric, mode=mode, trials=ranked)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--trials", default="16,32", help="budgets: trials per search")
    parser.add_argument("--from", dest="first", type=int, default=32,
                        help="warm-start from the table's first N trials")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--predictor", default="forest", choices=list(predict.PREDICTORS))
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    began = time.perf_counter()
    found = table.read(args.table)
    spec0 = parse_spec(found.spec)
    rows = table.completed(found)
    metric, mode, max_epochs = found.metric, found.mode, found.max_epochs
    predictor = predict.fit(args.predictor, spec0.space, rows, metric, max_epochs)
    first = sorted(found.rows, key=lambda r: r.index)[:args.first]
    source = f"{Path(args.table).name} rows 0-{args.first - 1}"
    known = knowledge(spec0.space, metric, mode,
                      [Earlier(source, earlier_results(first, metric, mode))])
    print(known.text, flush=True)
    report: dict[str, Any] = {
        "benchmark": f"warm_start_{Path(args.table).stem}", "table": args.table,
        "rows": len(rows), "metric": metric, "mode": mode, "max_epochs": max_epochs,
        "predictor": args.predictor, "workers": args.workers, "strategy": STRATEGIES[STRATEGY],
        "warm_from": {"rows": args.first, "told": len(known.trials), "line": known.text},
        "target": "the cold search's final best (same seed, same budget)",
        "budgets": []}
    for trials in [int(t) for t in args.trials.split(",")]:
        budget = trials * max_epochs
        seeds = []
        for seed in range(args.seeds):
            spec = parse_spec(strategy_spec(found.spec, STRATEGIES[STRATEGY], trials, seed))
            cold = [r.value for r in simulator.replay(spec, predictor, args.workers).results]
            warm = [r.value for r in
                    simulator.replay(spec, predictor, args.workers, warm=known).results]
            target = figures.best(cold, mode)
            seeds.append({"seed": seed, "target": target,
                          "cold": figures.seed_figures(cold, target, budget, mode),
                          "warm": figures.seed_figures(warm, target, budget, mode)})
        ratios = [s["warm"]["ratio"] for s in seeds]
        row = {"trials": trials, "budget_epochs": budget, "seeds": len(seeds),
               "warm_ratio": figures.spread(ratios),
               "warm_reached": sum(r is not None for r in ratios),
               "cold_ratio": figures.spread([s["cold"]["ratio"] for s in seeds]),
               "cold_best": figures.median_best([s["cold"]["best"] for s in seeds]),
               "warm_best": figures.median_best([s["warm"]["best"] for s in seeds]),
               "warm_epochs_spent_median": figures.quantile(
                   [s["warm"]["epochs"] for s in seeds], 0.5),
               "cold_epochs_spent_median": figures.quantile(
                   [s["cold"]["epochs"] for s in seeds], 0.5),
               "warm_vs_cold": {k: sum(figures.versus(s["warm"], s["cold"], mode) == k
                                       for s in seeds) for k in ("better", "tie", "worse")},
               "per_seed": seeds}
        row["target_met"] = row["warm_ratio"]["median"] is not None and \
            row["warm_ratio"]["median"] <= 0.5
        report["budgets"].append(row)
        print(f"T={trials} B={budget}: warm reaches the cold best in median "
              f"{row['warm_ratio']['median']} of B (IQR {row['warm_ratio']['q25']}-"
              f"{row['warm_ratio']['q75']}; {row['warm_reached']}/{len(seeds)} reach; cold "
              f"itself {row['cold_ratio']['median']}); median best cold {row['cold_best']:.4f} "
              f"warm {row['warm_best']:.4f}; warm vs cold per seed {row['warm_vs_cold']}",
              flush=True)
    report["wall_seconds"] = time.perf_counter() - began
    path = write_result(report["benchmark"], report)
    print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
