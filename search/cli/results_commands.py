"""Commands about what a search found: `trials` (every trial, best first).

They read the experiment record (a spec file, an experiment directory or an S3 URI): no Ray is
started and nothing of the experiment is changed.
"""

from __future__ import annotations

import typer

from search.cli.console import out
from search.cli.lifecycle_commands import JsonOpt, dump, experiment_of, from_record

ExperimentArg = typer.Argument(..., help="A spec file, an experiment directory or its URI "
                                         "(s3://bucket/runs/NAME).", show_default=False)


def trials(target: str = ExperimentArg, as_json: bool = JsonOpt) -> None:
    """Every trial of an experiment, best first: its outcome, epochs, best objective and sampled parameters (--json adds status, error, checkpoint and the per-epoch objective)."""
    from search.cli.report import trials_table

    experiment = experiment_of(target)
    results = from_record(experiment.recorded_results)
    if as_json:
        dump({"experiment": experiment.name, "directory": str(experiment.directory),
              "metric": results.metric, "mode": results.mode,
              "trials": [trial.as_json(results.live) for trial in results.trials]})
        return
    out.print(trials_table(results, f"trials of '{experiment.name}' ({len(results.trials)}, "
                                    f"best {results.metric} first)"))


def register(app: typer.Typer) -> None:
    app.command()(trials)
