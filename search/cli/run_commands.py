"""Commands that run a search: `launch`."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from search.cli.arguments import (EpochsOpt, NameOpt, SeedOpt, SpecArg, TrialsOpt, WarmFromOpt,
                                  located)
from search.cli.console import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, bad_config, err, fail,
                                load, out)
from search.cli.exiting import answers_fast
from search.remote import JOBS_API
from search.cli.report import interrupted_line, print_ending


def launch(spec_path: Path = SpecArg,
           address: Optional[str] = typer.Option(
               None, "--address", help="Join an existing Ray cluster (e.g. 10.0.0.5:6379, or "
               "'auto'); the token comes from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
               "~/.ray/auth_token. Default: start a local Ray."),
           trials: Optional[int] = TrialsOpt, max_epochs: Optional[int] = EpochsOpt,
           seed: Optional[int] = SeedOpt, name: Optional[str] = NameOpt,
           warm_from: Optional[list[str]] = WarmFromOpt,
           top: int = typer.Option(10, "--top", help="Rows in the final table of best trials."),
           relative_to: Optional[Path] = typer.Option(
               None, "--relative-to", hidden=True, help="Resolve the spec's relative paths "
               "against this directory instead of the spec file's (a submitted job's copy)."),
           ) -> None:
    """Run the search: Optuna samples, Ray Tune schedules with ASHA, MLflow records every trial.

    Launching the same file again resumes it (finished trials kept, the others from checkpoint); a finished experiment prints its results without starting Ray.

    One driver per experiment: a second launch of the same experiment is refused while the first runs.

    Ctrl+C (or SIGTERM, or SIGHUP: its terminal closed) saves the search and exits 130 (143, 129); the same command resumes it.

    The search stops when its first trials all fail alike (trial.abort_on_same_error).

    For a Ray cluster with token auth see cluster/README.md, then use --address (or submit). Inside a Ray job (RAY_ADDRESS set) it joins the cluster the job runs on."""
    spec = load(spec_path, trials, max_epochs, seed, name, relative_to, warm_from=warm_from)
    from search.experiment.lease import LeaseError, LeaseLost
    from search.experiment.state import DamagedRecord, Status
    from search.run.errors import LaunchError, StorageFull
    from search.run.interrupt import exit_code
    from search.run.launch import cluster_address
    from search.run.launch import launch as run_launch
    from search.spec.problems import SpecError
    from search.spec.redact import redact

    if address is None and cluster_address(None):  # inside a Ray job: its cluster
        address = cluster_address(None)
        err.print(f"joining the Ray cluster at {address} (RAY_ADDRESS)", highlight=False,
                  markup=False)

    location = located(spec)
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
    except LeaseLost as error:
        fail("taken over", str(error))
    except DamagedRecord as error:
        fail("damaged experiment record", str(error))
    except StorageFull as error:
        fail("cannot go on", str(error))
    except LaunchError as error:
        fail("cannot launch", str(error))
    except KeyboardInterrupt as error:  # a signal before Tune listened, or a second one
        err.print("interrupted: every finished epoch is saved; run the same command again to "
                  "resume.", highlight=False, markup=False)
        raise typer.Exit(exit_code(getattr(error, "signum", signal.SIGINT))) from None
    print_ending(ending, top)
    if ending.full:
        fail("cannot go on", ending.full)
    if ending.status is Status.INTERRUPTED:
        err.print(interrupted_line(ending), highlight=False, markup=False)
        raise typer.Exit(exit_code(ending.signal) if ending.signal else EXIT_INTERRUPTED)
    if ending.status is Status.ABORTED:
        err.print("[bold red]search aborted[/]: ", end="", highlight=False)
        err.print(str(ending.reason), highlight=False, markup=False)
        err.print("Fix the cause and launch again: the aborted experiment is kept aside and the "
                  "search starts anew (set trial.abort_on_same_error: 0 to never abort).",
                  highlight=False, markup=False)
        raise typer.Exit(EXIT_FAILED)


AddressOpt = typer.Option(JOBS_API, "--address", help="The cluster's Jobs API (the dashboard "
                          "address). The token comes from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                          "~/.ray/auth_token, never from the spec.")


def submit(spec_path: Path = SpecArg, address: str = AddressOpt,
           no_wait: bool = typer.Option(False, "--no-wait", help="Print the job id and return "
                                        "instead of following the job to its end."),
           trials: Optional[int] = TrialsOpt, max_epochs: Optional[int] = EpochsOpt,
           seed: Optional[int] = SeedOpt, name: Optional[str] = NameOpt,
           warm_from: Optional[list[str]] = WarmFromOpt,
           as_json: bool = typer.Option(False, "--json", help="Print the job as JSON on stdout "
                                        "(at its end; the job's output then goes to stderr).")
           ) -> None:
    """Run the search on a Ray cluster as a Ray job: its driver is `launch` on the cluster.

    The spec is validated here first: a bad file exits 2 and never reaches the cluster. Paths in the spec are paths on the cluster (relative ones resolve against the spec file's directory, as for launch): storage_path must be a directory every node sees.

    Prints the job id (stdout) and the commands to follow it; without --no-wait it streams the job's output and exits with the search's exit code. Submitting the same spec again resumes it, like launch."""
    spec = load(spec_path, trials, max_epochs, seed, name, warm_from=warm_from)
    from search.remote.jobs import Jobs, JobsError
    from search.remote.submission import AlreadyRunning, submit_search

    location = located(spec)
    try:
        jobs = Jobs(address)
        job_id = submit_search(jobs, spec, str(location.directory),
                               note=lambda text: err.print(text, highlight=False, markup=False))
    except AlreadyRunning as error:
        fail("already running", str(error))
    except JobsError as error:
        fail("cannot submit", str(error))
    if not as_json:
        out.print(job_id, highlight=False, markup=False)
    follow = f"--address {address}" if address != JOBS_API else ""
    err.print(f"submitted experiment '{spec.name}' as job {job_id}; follow it with:\n"
              f"  resnet-search status {job_id} {follow}\n"
              f"  resnet-search logs {job_id} {follow} --follow\n"
              f"  resnet-search stop {job_id} {follow}", highlight=False, markup=False)
    if no_wait:
        if as_json:
            out.print_json(json.dumps(jobs.get(job_id).as_json()))
        return
    raise typer.Exit(followed(jobs, job_id, address, sys.stderr if as_json else sys.stdout,
                              as_json))


def followed(jobs: Any, job_id: str, address: str, stream: Any = None,
             as_json: bool = False) -> int:
    """Stream a job's output to its end: the exit code of its search (130 if only the
    following was interrupted: the job keeps running)."""
    from search.remote.jobs import JobsError

    stream = stream or sys.stdout

    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    try:
        job = jobs.follow(job_id, write)
    except KeyboardInterrupt:
        err.print(f"stopped following; job {job_id} keeps running (stop it with `resnet-search "
                  f"stop {job_id} --address {address}`)", highlight=False, markup=False)
        return EXIT_INTERRUPTED
    except JobsError as error:
        fail("lost the job", str(error))
    err.print(f"job {job_id}: {job.status}" + (f" ({job.message})" if job.message else ""),
              highlight=False, markup=False)
    if as_json:
        out.print_json(json.dumps(job.as_json()))
    return job_exit_code(job.status, job.exit_code)


def job_exit_code(status: str, driver_code: Optional[int]) -> int:
    """The search's exit code as the CLI reports a job's end: the driver's own when Ray has it;
    a stopped job was interrupted (SIGTERM: 143); any other failure is 1."""
    if driver_code is not None:
        return driver_code
    return {"SUCCEEDED": EXIT_OK, "STOPPED": 143}.get(status, EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(answers_fast(launch))
    app.command()(submit)
