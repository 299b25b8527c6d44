"""The leaderboard as data: one row per trial, best first, with every sampled parameter in its
own column, written as CSV (for a spreadsheet or pandas) and shown in the report's index."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from search.engine.study import final_value
from search.experiment.results import Results
from search.spec import objective

LEADERBOARD_FILE = "leaderboard.csv"


def param_names(results: Results) -> list[str]:
    """Every sampled parameter, in the order the trials first show it (a conditional one only
    appears in the trials where it exists)."""
    return list(dict.fromkeys(name for trial in results.trials for name in trial.params))


def rows(results: Results) -> list[dict[str, Any]]:
    """One row per trial, best first (the record's order). A parameter the trial did not
    sample (a condition did not hold) is empty."""
    names = param_names(results)
    return [{"rank": rank, "trial_id": trial.trial_id,
             f"best_{results.metric}": trial.best if objective.finite(trial.best) else None,
             f"final_{results.metric}": final_value(trial), "epochs": trial.epochs,
             "outcome": trial.shown(results.live),
             **{name: trial.params.get(name) for name in names}}
            for rank, trial in enumerate(results.trials, 1)]


def write_csv(results: Results, path: Path) -> Path:
    table = rows(results)
    columns = list(table[0]) if table else ["rank", "trial_id", f"best_{results.metric}",
                                            f"final_{results.metric}", "epochs", "outcome"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        # A list-valued choice (milestones) is written as Python shows it: one cell.
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in table)
    return path
