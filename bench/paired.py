"""Any two strategies of a `bench/compare.py` LCBench result, paired over task x seed, from the
per-seed figures its JSON keeps: better / tie / worse (fewer epochs to random's best first, then
the better best value) and one-sided Wilcoxon p-values that the first needs fewer epochs to the
target ("not reached" = B + 1) and has a lower mean regret, as the protocol pairs the default
with stock (search/replay/protocol.py). The JSON keeps mean regrets to 4 decimals, so the
regret p-value can differ a little from the one compare.py printed (more ties); the epochs are
exact.

    python bench/paired.py bench/results/compare_lcbench_methods_tune.json bohb_promotion default
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.replay import figures  # noqa: E402


def rows(per_seed: dict, name: str) -> list[dict]:
    """One dict per task and seed (tasks sorted, seeds in order) for strategy `name`."""
    out = []
    for task in sorted(per_seed):
        figures_ = per_seed[task][name]
        for i in range(len(figures_["best"])):
            out.append({key: values[i] for key, values in figures_.items()})
    return out


def pair(half: dict, ours: str, other: str) -> dict:
    budget = half["budget_epochs"]
    mine, theirs = rows(half["per_seed"], ours), rows(half["per_seed"], other)
    verdicts = [figures.versus(a, b, "max") for a, b in zip(mine, theirs)]

    def cost(r: dict) -> float:
        return budget + 1 if r["epochs_to_target"] is None else r["epochs_to_target"]

    return {"ours": ours, "other": other, "pairs": len(mine),
            "better": verdicts.count("better"), "tie": verdicts.count("tie"),
            "worse": verdicts.count("worse"),
            "p_epochs": figures.wilcoxon_less([cost(r) for r in mine],
                                              [cost(r) for r in theirs]),
            "p_regret": figures.wilcoxon_less([r["regret_mean"] for r in mine],
                                              [r["regret_mean"] for r in theirs])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("ours")
    parser.add_argument("others", nargs="+")
    args = parser.parse_args()
    report = json.loads(args.result.read_text())
    for name, half in report["halves"].items():
        for other in args.others:
            p = pair(half, args.ours, other)
            shown = {k: "n/r" if p[k] is None else f"{p[k]:.3g}" for k in ("p_epochs", "p_regret")}
            print(f"{name}: {p['ours']} vs {p['other']} over {p['pairs']} task-seeds: better "
                  f"{p['better']}, tie {p['tie']}, worse {p['worse']}; one-sided Wilcoxon p = "
                  f"{shown['p_epochs']} (epochs to target), {shown['p_regret']} (mean regret)")


if __name__ == "__main__":
    main()
