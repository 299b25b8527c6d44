"""The end of a launch on the terminal: the best trials, the best config, where things are."""

from __future__ import annotations

import json
import os
import shlex
from typing import Any, Optional

from rich.table import Table

from search.cli.console import err, out
from search.engine.pareto import on_front


def params_text(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in sorted(params.items()))


def trials_table(results: Any, title: str, top: Optional[int] = None) -> Table:
    """The leaderboard: rank, trial, best objective, epochs, outcome, sampled parameters. With
    several objectives: the Pareto front first (marked *, by the first objective), then the
    others, each with every objective at its last epoch; a trial that breaks a constraint is
    marked x."""
    if results.objectives:
        return _front_table(results, title, top)
    table = Table(title=title, title_justify="left")
    for column in ("#", "trial", f"best {results.metric}", "epochs", "outcome", "parameters"):
        table.add_column(column)
    for rank, trial in enumerate(results.trials[:top], 1):
        best = "-" if trial.best is None else f"{trial.best:.4f}"
        mark = "" if results.feasible(trial) else " x"
        table.add_row(str(rank), trial.trial_id, best + mark, str(trial.epochs),
                      trial.shown(results.live), params_text(trial.params))
    return table


def _front_table(results: Any, title: str, top: Optional[int]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("#", "front", "trial", *(m for m, _ in results.objectives), "epochs",
                   "outcome", "parameters"):
        table.add_column(column)
    front = set(on_front(results))
    ordered = [t for t in results.trials if t.trial_id in front] + \
        [t for t in results.trials if t.trial_id not in front]
    for rank, trial in enumerate(ordered[:top], 1):
        values = results.values(trial)
        mark = "*" if trial.trial_id in front else ("x" if not results.feasible(trial) else "")
        table.add_row(str(rank), mark, trial.trial_id,
                      *("-" if values[m] is None else f"{values[m]:.4g}"
                        for m, _ in results.objectives),
                      str(trial.epochs), trial.shown(results.live), params_text(trial.params))
    return table


def trials_json(results: Any) -> list[dict]:
    """What `trials --json` prints of each trial: with several objectives or constraints, also
    every objective's value at its last epoch, whether it is on the Pareto front and whether
    it holds the constraints."""
    front = set(on_front(results)) if results.objectives else set()
    rows = []
    for trial in results.trials:
        row = trial.as_json(results.live)
        if results.objectives or results.constraints:
            row.update(objectives=results.values(trial), feasible=results.feasible(trial))
        if results.objectives:
            row["pareto"] = trial.trial_id in front
        rows.append(row)
    return rows


def directory_text(ending: Any) -> str:
    """The experiment's directory as a command line takes it: relative when under the working
    directory (shorter), else as the record says."""
    directory = str(ending.location.directory)
    if "://" not in directory and not (here := os.path.relpath(directory)).startswith(".."):
        directory = here
    return shlex.quote(directory)


def mlflow_link(ending: Any) -> str:
    """Where the trials are compared: the runs view of the experiment on its tracking server,
    or the command that opens MLflow's UI on a local store."""
    uri = ending.location.tracking_uri
    # Decided without importing MLflow: a finished experiment's results print in seconds.
    if not uri.startswith(("http://", "https://")):
        return f"resnet-search ui {directory_text(ending)}"
    from search.tracking import store, ui

    found: list[str] = []
    # The server answered a moment ago; if it no longer does, its address still helps.
    store.within(10, lambda: found.append(ui.search_link(uri, ending.parent_run_id)))
    return found[0] if found else ui.server_address(uri)


def print_ending(ending: Any, top: int) -> None:
    """The results of a search that ended. An interrupted search has none yet: it gets no
    table and no `best config:` (a script reading it would take a partial search's best for
    the result); the launch says in one line that it is saved and how to resume it (`trials`
    and `status` show it so far). `best config:` and `best checkpoint:` are a finished
    search's only: an aborted one shows its table, which says how its trials failed."""
    from search.experiment.state import Status

    results = ending.results
    _mirror_warning(ending)
    if ending.status is Status.INTERRUPTED:
        return
    out.print(trials_table(results, f"best trials of '{ending.location.directory.name}' "
                                    f"({len(results.trials)} trials)", top))
    if results.objectives and ending.status is Status.FINISHED:
        front = on_front(results)
        out.print(f"Pareto front: {len(front)} trial{'s' if len(front) != 1 else ''} of "
                  f"{' and '.join(m for m, _ in results.objectives)} (marked *): "
                  + " ".join(front), highlight=False, markup=False)
    if results.best is not None and ending.status is Status.FINISHED:
        out.print("best config: " + json.dumps(results.best.params, default=str),
                  highlight=False, markup=False)
        if results.best.checkpoint is not None:
            out.print(f"best checkpoint: {results.best.checkpoint}", highlight=False,
                      markup=False)
    resumed = " (resumed)" if ending.resumed else ""
    out.print(f"experiment state: {ending.location.directory}{resumed}", highlight=False,
              markup=False)
    out.print(f"compare the trials in MLflow:  {mlflow_link(ending)}", highlight=False,
              markup=False)
    if ending.already_finished:
        err.print(f"this experiment finished earlier (read from its record; Ray was not "
                  f"started); to run it again, launch under a new name: --name "
                  f"{ending.location.directory.name}-2; to extend it, raise --trials or "
                  f"--max-epochs", highlight=False, markup=False)


def interrupted_line(ending: Any) -> str:
    """The one line an interrupted launch ends with."""
    return (f"interrupted ({ending.reason}): the search is saved; run the same command again "
            f"to resume it (its trials so far: resnet-search trials {directory_text(ending)})")


def _mirror_warning(ending: Any) -> None:
    if ending.mirror_failures:
        err.print(f"warning: {ending.mirror_failures} MLflow writes failed after retries; the "
                  "per-epoch metrics were back-filled from Ray's results where the store "
                  f"allowed, and Ray's experiment state in {ending.location.directory} is "
                  "complete.",
                  highlight=False, markup=False)
