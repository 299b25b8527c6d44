"""`resnet-search`: validate a search space, launch it on Ray, compare the trials in MLflow."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from search.spec.problems import SpecError
from search.engine.space import describe

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode="rich")
# Wide enough for the trials table when the output is a file or a CI log.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)

EXIT_BAD_CONFIG = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

SpecArg = typer.Argument(..., help="Search-space YAML file (see spaces/).", show_default=False)
TrialsOpt = typer.Option(None, "--trials", help="Override budget.trials.")
EpochsOpt = typer.Option(None, "--max-epochs", help="Override budget.max_epochs.")
SeedOpt = typer.Option(None, "--seed", help="Override the sampler seed and the training seed.")
NameOpt = typer.Option(None, "--name", help="Override the experiment name (a new name starts a "
                                            "new experiment instead of resuming).")


def _load(path: Path, trials: Optional[int], max_epochs: Optional[int], seed: Optional[int],
          name: Optional[str] = None) -> Any:
    from search.spec.model import load_spec  # imported here: `--help` stays instant

    try:
        spec = load_spec(path, trials=trials, max_epochs=max_epochs, seed=seed)
        return spec.renamed(name) if name is not None else spec
    except SpecError as error:
        err.print(f"[bold red]invalid search space[/] ({len(error.problems)} problem"
                  f"{'s' if len(error.problems) != 1 else ''}):", highlight=False)
        err.print(str(error), markup=False, highlight=False)
        raise typer.Exit(EXIT_BAD_CONFIG) from None


class OneLineErrors(logging.Filter):
    """Keeps an engine's error message but drops its traceback. Ray logs a failed background
    upload of its experiment state with a full traceback; it uploads again at the next snapshot
    and at the end, so the user needs the line, not Ray's internals."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            first = (str(error).splitlines() or [""])[0]
            record.msg = f"{record.getMessage()}{type(error).__name__}: {first}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


# Loggers whose errors are Ray's own retried housekeeping, not the user's to debug.
ONE_LINE_LOGGERS = ("ray.tune.execution.experiment_state",)


def quiet_engines() -> None:
    """Our progress lines replace the engines' INFO chatter; their warnings still show."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ONE_LINE_LOGGERS:
        logging.getLogger(name).addFilter(OneLineErrors())


def _asha_rungs(spec: Any) -> list[int]:
    if spec.scheduler.type != "asha":
        return []
    rungs, t = [], spec.scheduler.grace_period
    while t < spec.budget.max_epochs:
        rungs.append(int(t))
        t *= spec.scheduler.reduction_factor
    return rungs


@app.command()
def validate(spec_path: Path = SpecArg, trials: Optional[int] = TrialsOpt,
             max_epochs: Optional[int] = EpochsOpt, seed: Optional[int] = SeedOpt) -> None:
    """Check a search space and print it resolved, with a summary of what it explores.

    Exits 0 when valid and 2 with one line per problem (field, value, rule) when not."""
    spec = _load(spec_path, trials, max_epochs, seed)
    out.print(yaml.safe_dump(spec.resolved(), sort_keys=False), highlight=False, markup=False)
    table = Table(title=f"space of '{spec.name}'", title_justify="left")
    table.add_column("parameter")
    table.add_column("values")
    for name, param in spec.space.items():
        table.add_row(name, describe(param))
    for name, value in spec.fixed.items():
        table.add_row(name, f"fixed {value}")
    out.print(table)
    b = spec.budget
    rungs = _asha_rungs(spec)
    out.print(f"{b.trials} trials x up to {b.max_epochs} epochs = at most "
              f"{b.trials * b.max_epochs} "
              f"trial-epochs; sampler {spec.sampler.type}, scheduler {spec.scheduler.type}"
              + (f" (ASHA rungs at epochs {rungs})" if rungs else "")
              + f"; objective {spec.objective.mode} {spec.objective.metric}.", highlight=False)
    out.print(f"[green]valid[/] (spec hash {spec.spec_hash()})")


@app.command()
def launch(spec_path: Path = SpecArg,
           address: Optional[str] = typer.Option(
               None, "--address", help="Join an existing Ray cluster (e.g. 10.0.0.5:6379, or "
               "'auto'); the token comes from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
               "~/.ray/auth_token. Default: start a local Ray."),
           trials: Optional[int] = TrialsOpt, max_epochs: Optional[int] = EpochsOpt,
           seed: Optional[int] = SeedOpt, name: Optional[str] = NameOpt,
           top: int = typer.Option(10, "--top", help="Rows in the final table of best trials."),
           ) -> None:
    """Run the search: Optuna samples, Ray Tune schedules with ASHA, MLflow records every trial.

    Launching the same file again resumes it (finished trials kept, the others from checkpoint).

    The search stops when its first trials all fail alike (trial.abort_on_same_error).

    For a Ray cluster with token auth see cluster/README.md, then use --address."""
    spec = _load(spec_path, trials, max_epochs, seed, name)
    from search.run.launch import launch as run_launch  # Ray imports are slow
    from search.run.runtime import LaunchError

    quiet_engines()

    err.print(f"launching '{spec.name}': {spec.budget.trials} trials, sampler "
              f"{spec.sampler.type}, scheduler {spec.scheduler.type}", highlight=False)
    try:
        report = run_launch(spec, address=address, console=err)
    except SpecError as error:
        err.print(f"[bold red]cannot run this space here[/]:\n{error}", highlight=False)
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    except LaunchError as error:
        err.print(f"[bold red]cannot launch[/]: {error}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        err.print("interrupted: every finished epoch is checkpointed; run the same command "
                  "again to resume.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _print_report(spec, report, top)
    if report.aborted:
        err.print(f"[bold red]search aborted[/]: {report.aborted}", highlight=False)
        err.print("Fix the cause and launch again: the aborted experiment is kept aside and the "
                  "search starts anew (set trial.abort_on_same_error: 0 to never abort).",
                  highlight=False)
        raise typer.Exit(EXIT_FAILED)


def _print_report(spec: Any, report: Any, top: int) -> None:
    metric = spec.objective.metric
    table = Table(title=f"best trials of '{spec.name}' ({len(report.trials)} trials)",
                  title_justify="left")
    for column in ("#", "trial", f"best {metric}", "epochs", "outcome", "parameters"):
        table.add_column(column)
    for rank, trial in enumerate(report.trials[:top], 1):
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in sorted(trial.config.items()))
        table.add_row(str(rank), trial.trial_id, f"{trial.best:.4f}", str(trial.epochs),
                      trial.outcome, params)
    out.print(table)
    if report.trials and math.isfinite(report.trials[0].best):
        out.print("best config: " + json.dumps(report.trials[0].config, default=str),
                  highlight=False, markup=False)
    if report.mirror_failures:
        err.print(f"[yellow]warning[/]: {report.mirror_failures} MLflow writes failed; Ray's "
                  f"experiment state in {report.experiment_path} is complete.")
    uri = report.tracking_uri
    ui = (f"mlflow ui --backend-store-uri {uri}" if not uri.startswith("http")
          else f"open {uri}")
    out.print(f"experiment state: {report.experiment_path}" + (" (resumed)" if report.resumed
                                                                else ""), highlight=False)
    out.print(f"compare the trials in MLflow:  {ui}", highlight=False, markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
