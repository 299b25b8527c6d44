"""What commands are given, in one place (as pip's `cli/cmdoptions.py`): the arguments and
options several commands share, and what a TARGET names — a local experiment (through the
Python API's `record_of`, so `status X` and `search.open_experiment(X)` find the same one) or,
with --address, a Ray job. Each ends the command with its exit code and a one-line reason when
the target names nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import typer

from search.cli.console import EXIT_BAD_CONFIG, bad_config, fail, load
from search.remote import JOBS_API

# ---- a spec and its overrides (validate, launch, submit) ----

SpecArg = typer.Argument(..., help="Search-space YAML file (see spaces/).", show_default=False)
TrialsOpt = typer.Option(None, "--trials", help="Override budget.trials.")
EpochsOpt = typer.Option(None, "--max-epochs", help="Override budget.max_epochs.")
SeedOpt = typer.Option(None, "--seed", help="Override the sampler seed and the training seed.")
WarmFromOpt = typer.Option(None, "--warm-from", metavar="EXPERIMENT",
                           help="Warm-start from an earlier experiment (a spec file, an "
                           "experiment directory or s3://bucket/runs/NAME): its trials are told "
                           "to the searcher before it proposes anything; adds to warm_start.from "
                           "(repeatable; a path is relative to the current directory).")
NameOpt = typer.Option(None, "--name", help="Override the experiment name (a new name starts a "
                                            "new experiment instead of resuming).")

# ---- an experiment, or a job (status, logs, stop, trials, report, export-best, ui, ...) ----

ExperimentArg = typer.Argument(..., help="A spec file, an experiment directory or its URI "
                                         "(s3://bucket/runs/NAME).", show_default=False)
TargetArg = typer.Argument(..., help="A spec file or an experiment directory; with --address, "
                                     "a job id, an experiment name (submit --name) or a spec "
                                     "file (its experiment's newest job).",
                           show_default=False)
JobsAddressOpt = typer.Option(None, "--address", help=f"A cluster's Jobs API (e.g. {JOBS_API}): "
                              "look at Ray jobs instead of local experiments.")
JsonOpt = typer.Option(False, "--json", help="Print JSON (for scripts) instead of tables.")
ForceOpt = typer.Option(False, "--force", help="Replace what is already there.")


# ---- what a target names ----

def located(spec: Any) -> Any:
    """Where the spec's experiment lives, or exit 2: a `storage_path` URI whose store this
    product cannot hold a lease on is a bad field like any other."""
    from search.run.launch import locate_spec
    from search.spec.problems import SpecError

    try:
        return locate_spec(spec)
    except SpecError as error:
        bad_config(error, "cannot run this space here")


def experiment_of(target: str) -> Any:
    """The local experiment a target names: a spec file (where its experiment lives) or an
    experiment directory (or its URI), whose record is read now (exit 1 naming the file when it
    is missing or damaged, as for a spec file's experiment later); exit 2 for a target that is
    neither and for a spec file that is not valid."""
    from search.api.experiment import NoSuchTarget, record_of
    from search.experiment.storage import UnsupportedStorage

    try:
        return from_record(lambda: record_of(
            target, where=lambda path: located(load(path, None, None, None))))
    except UnsupportedStorage as error:
        fail("unsupported storage", f"{target} {error}", EXIT_BAD_CONFIG)
    except NoSuchTarget as error:
        fail("no such experiment", str(error), EXIT_BAD_CONFIG)


def storage_path(target: str) -> Any:
    """A path or an object store URI (s3://bucket/runs/name) as a path; exit 2 for a URI this
    product cannot read."""
    from search.experiment.storage import UnsupportedStorage, as_path

    try:
        return as_path(target)
    except UnsupportedStorage as error:
        fail("unsupported storage", f"{target} {error}", EXIT_BAD_CONFIG)


def from_record(read: Callable[[], Any]) -> Any:
    """What `read` gets from an experiment's record, or exit 1 saying why it cannot."""
    from search.experiment.record import NoExperiment
    from search.experiment.state import DamagedRecord

    try:
        return read()
    except NoExperiment as error:
        fail("no experiment", str(error))
    except DamagedRecord as error:
        fail("damaged experiment record", str(error))


def summary_of(experiment: Any) -> Any:
    """The experiment's Summary (with its Pareto front, for a search of several objectives)."""
    from search.engine.pareto import on_front

    return from_record(lambda: experiment.summary(front=on_front))


def jobs_at(address: str) -> Any:
    """The Jobs API at an address, or exit 1 saying why it cannot be reached."""
    from search.remote.jobs import Jobs, JobsError

    try:
        return Jobs(address)
    except JobsError as error:
        fail("cannot reach the cluster", str(error))


def job_of(jobs: Any, target: str) -> Any:
    """The job a target names: a spec file (the newest job of its experiment), a job id, or an
    experiment name as `submit --name` gave it (its newest job); see `search.remote.jobs.pick`."""
    from search.remote.jobs import JobsError

    path = Path(target)
    spec_name = load(path, None, None, None).name if path.is_file() else None
    try:
        return jobs.named(target, spec_name)
    except JobsError as error:
        fail("no such job", str(error))
