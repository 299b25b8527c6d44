"""Pre-flight: every check that can run without Ray runs before Ray starts, and every problem it
finds is reported at once, as `validate` does (exit 2, each naming field, value and rule).

    storage   storage_path is a directory this process can create and write, or an s3:// prefix
              where it can write and delete a probe object (refused clearly: a file, /proc, a
              store other than S3, a bucket without access)
    data      the data loads (a corrupt image is named by its path), has at least two classes,
              and holds at least one batch of the largest batch size the space can produce
    trials    every value each distribution can produce goes the way a trial's config goes:
              through Optuna (which stores a list-valued choice by its position), through the
              define-by-run function Ray calls, into the trainer's `TrainConfig`
    gpu       a local launch asking for GPUs has them; and, when every other check passed,
              trials packed on a GPU (0 < trial.resources.gpu < 1) fit in its memory, measured
              on probe steps of the heaviest configs (search/run/memory.py)

The tracking store is probed last (`tracking`): an unreachable server (or a locked or half-built
SQLite store) is not the file's fault, so it ends the launch with exit 1, not 2.
`resnet-search validate --preflight` runs the same.
"""

from __future__ import annotations

from typing import Callable, Optional

import optuna

from resnet_core.config import TrainConfig
from resnet_core.data import (DataSplits, DatasetMissingError, DatasetUnreadableError,
                              load_data)
from search.engine.space import DefineByRun, optuna_params
from search.experiment.location import Location, storage_problem
from search.run import memory
from search.run.errors import LaunchError
from search.spec import points, schema
from search.spec.job import TrialJob
from search.spec.model import SearchSpec
from search.spec.problems import Problem, SpecError
from search.spec.redact import missing_secret, redact

SOURCE = "pre-flight"


def storage(spec: SearchSpec, location: Location, job: TrialJob) -> list[Problem]:
    reason = storage_problem(spec.storage_path, location.storage)
    return [Problem("storage_path", spec.storage_path, reason)] if reason else []


def data(spec: SearchSpec, location: Location, job: TrialJob) -> list[Problem]:
    """Read the data once on the driver, as every trial will: a missing or unreadable dataset
    fails here in seconds instead of in every trial (and `download: true` fetches it once)."""
    try:
        splits = load_data(job.data)
    except (DatasetMissingError, DatasetUnreadableError) as error:
        return [Problem("data.root", job.data.root, str(error))]
    except ValueError as error:  # the config's own rules (a split that leaves nothing...)
        return [Problem("data", spec.data.model_dump(), str(error))]
    where, batch = largest_batch(spec)
    return split_problems(splits, batch, where, spec.data.subset, spec.data.dataset)


def largest_batch(spec: SearchSpec) -> tuple[str, int]:
    """(field, value) of the largest batch size a trial can get."""
    if "batch_size" in spec.space:
        return "space.batch_size", max(points.extremes(spec.space["batch_size"]))
    if "batch_size" in spec.fixed:
        return "fixed.batch_size", spec.fixed["batch_size"]
    return "fixed.batch_size", TrainConfig().batch_size


def split_problems(splits: DataSplits, batch: int, batch_field: str, subset: Optional[int],
                   dataset: str) -> list[Problem]:
    """What makes every trial fail on this data before it trains (pure)."""
    problems = []
    n = len(splits.train_y)
    classes = len(set(splits.train_y.tolist()))
    if classes < 2:
        found = f"{n} example(s) of {classes} class(es)"
        if subset is not None:
            problems.append(Problem("data.subset", subset, f"subset is {subset} but the training "
                                    f"split then holds {found}; a classifier needs at least 2"))
        else:
            where = "data.root" if dataset == "imagefolder" else "data.dataset"
            problems.append(Problem(where, dataset, f"{dataset}'s training split holds {found} "
                                    "but a classifier needs at least 2"))
    if n < batch:
        problems.append(Problem(batch_field, batch,
                                f"batch_size is {batch} but the training split has only {n} "
                                "example(s); every epoch drops its last partial batch, so no "
                                "trial would train" + (f" (data.subset is {subset})"
                                                      if subset is not None else "")))
    return problems


def trials(spec: SearchSpec, location: Location, job: TrialJob) -> list[Problem]:
    """Replay, for each parameter and each of its choices (or both ends of its range), a trial
    the way Ray's OptunaSearch makes one: Optuna's suggestions as stored, overlaid with what the
    define-by-run function returns; then build the trainer's config from it. Each value the
    trainer refuses is named once, by the parameter it came from."""
    problems, seen = [], set()
    define = DefineByRun(spec.space)
    for name, value, point in points.covering_points(spec.space):
        trial = optuna.trial.FixedTrial(optuna_params(spec.space, point))
        returned = define(trial) or {}  # suggests: only then does trial.params hold them
        config = {**trial.params, **returned}
        for key, got in config.items():
            reason = schema.check_value(key, got) if key in schema.searchable() else (
                schema.unknown_field(key))
            if reason and (key, repr(got)) not in seen:
                seen.add((key, repr(got)))
                problems.append(Problem(f"space.{key}", point.get(key, got), (
                    f"a trial that samples {key}={point.get(key, got)!r} gets {key}={got!r} "
                    f"in its config, which the trainer refuses: {reason}")))
        if not problems:
            try:
                job.train_config(config)
            except ValueError as error:
                problems.append(Problem(f"space.{name}", value, f"a trial that samples "
                                        f"{name}={value!r} gets a config the trainer refuses: "
                                        f"{error}"))
    return problems


def gpu(spec: SearchSpec, location: Location, job: TrialJob) -> list[Problem]:
    """This machine has the GPUs each trial asks for (its memory is measured last)."""
    return memory.problems(spec, job, memory.no_say, measure_memory=False)


Check = Callable[[SearchSpec, Location, TrialJob], list[Problem]]
CHECKS: dict[str, Check] = {"storage": storage, "data": data, "trials": trials, "gpu": gpu}
# Read on the driver's machine: with --address the trials run elsewhere (search/run/checks.py
# checks the nodes instead).
LOCAL = ("data", "gpu")


def problems(spec: SearchSpec, location: Location, job: TrialJob,
             names: tuple[str, ...] = tuple(CHECKS),
             say: Callable[[str], None] = memory.no_say) -> list[Problem]:
    """Every problem of the checks `names`. The memory of packed trials is measured only when
    none was found: probing configs that cannot run would say nothing, and costs GPU seconds."""
    found = [problem for name in names for problem in CHECKS[name](spec, location, job)]
    if "gpu" in names and not found:
        found += memory.packing_problems(spec, job, say)
    return found


def check(spec: SearchSpec, location: Location, job: TrialJob,
          names: tuple[str, ...] = tuple(CHECKS),
          say: Callable[[str], None] = memory.no_say) -> None:
    found = problems(spec, location, job, names, say)
    if found:
        raise SpecError(found, source=SOURCE)


def tracking(uri: str, note: Callable[[str], None] = lambda text: None) -> None:
    """The MLflow store answers, or LaunchError, before any training: a server within seconds;
    a local SQLite file is created here if it is new (`note` says so), with no deadline."""
    # MLflow loads only now: a launch refused by the checks above never waits for its import
    from search.tracking import store

    problem = missing_secret(uri) or store.probe(uri, note=note)
    if problem:
        raise LaunchError(f"MLflow tracking store {redact(uri)} is unusable: {redact(problem)}")


def for_launch(address: Optional[str]) -> tuple[str, ...]:
    """The checks for a launch: on a remote cluster the data and the GPUs are where the
    workers run, not here."""
    return tuple(name for name in CHECKS if not (address and name in LOCAL))

