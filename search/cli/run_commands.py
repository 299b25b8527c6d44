"""Commands that run a search: `launch`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from search.cli.console import (EXIT_FAILED, EXIT_INTERRUPTED, EpochsOpt, NameOpt, SeedOpt,
                                SpecArg, TrialsOpt, bad_config, err, fail, load)
from search.cli.report import print_ending


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

    Launching the same file again resumes it (finished trials kept, the others from checkpoint); a finished experiment prints its results without starting Ray.

    One driver per experiment: a second launch of the same experiment is refused while the first runs.

    Ctrl+C (or SIGTERM) saves the search and exits 130 (143); the same command resumes it.

    The search stops when its first trials all fail alike (trial.abort_on_same_error).

    For a Ray cluster with token auth see cluster/README.md, then use --address."""
    spec = load(spec_path, trials, max_epochs, seed, name)
    from search.experiment.lease import LeaseError
    from search.experiment.state import DamagedRecord, Status
    from search.run.errors import LaunchError
    from search.run.interrupt import exit_code
    from search.run.launch import launch as run_launch, locate_spec
    from search.spec.problems import SpecError
    from search.spec.redact import redact

    location = locate_spec(spec)
    err.print(f"experiment '{spec.name}': {location.directory}", highlight=False, markup=False)
    err.print(f"tracking: {redact(location.tracking_uri)}; {spec.budget.trials} trials, sampler "
              f"{spec.sampler.type}, scheduler {spec.scheduler.type}", highlight=False,
              markup=False)
    try:
        ending = run_launch(spec, address=address, console=err)
    except SpecError as error:
        bad_config(error, "cannot run this space here")
    except LeaseError as error:
        fail("already running", str(error))
    except DamagedRecord as error:
        fail("damaged experiment record", str(error))
    except LaunchError as error:
        fail("cannot launch", str(error))
    except KeyboardInterrupt:
        err.print("interrupted: every finished epoch is saved; run the same command again to "
                  "resume.", highlight=False, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print_ending(ending, top)
    if ending.status is Status.INTERRUPTED:
        err.print(f"interrupted ({ending.reason}): the search is saved; run the same command "
                  "again to resume it.", highlight=False, markup=False)
        raise typer.Exit(exit_code(ending.signal))
    if ending.status is Status.ABORTED:
        err.print("[bold red]search aborted[/]: ", end="", highlight=False)
        err.print(str(ending.reason), highlight=False, markup=False)
        err.print("Fix the cause and launch again: the aborted experiment is kept aside and the "
                  "search starts anew (set trial.abort_on_same_error: 0 to never abort).",
                  highlight=False, markup=False)
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(launch)
