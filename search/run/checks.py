"""Checks a launch makes on the running Ray before any trial starts: what the trials ask for
exists, every node sees the storage, the data can be read. Each failure is a `SpecError` naming
the field of the spec that cannot work here (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray

from resnet_core.data import DatasetMissingError, load_data
from search.remote import cluster
from search.spec.job import TrialJob
from search.spec.model import Resources, SearchSpec
from search.spec.problems import Problem, SpecError


def check_resources(spec: SearchSpec) -> None:
    """Resources the trials ask for must exist on some node (checked before any training)."""
    wanted = spec.trial.resources
    nodes = [n["Resources"] for n in cluster.alive_nodes()]
    problems = []
    most_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
    most_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    if wanted.gpu > 0 and most_gpu == 0:
        problems.append(Problem("trial.resources.gpu", wanted.gpu,
                                f"is {wanted.gpu:g} but the Ray cluster has no GPUs; use gpu: 0 "
                                "or a cluster with GPUs"))
    elif wanted.gpu > most_gpu:
        problems.append(Problem("trial.resources.gpu", wanted.gpu,
                                f"is {wanted.gpu:g} but no node has more than {most_gpu:g} GPUs"))
    if wanted.cpu > most_cpu:
        problems.append(Problem("trial.resources.cpu", wanted.cpu,
                                f"is {wanted.cpu:g} but no node has more than {most_cpu:g} CPUs"))
    if problems:
        raise SpecError(problems, source="cluster check")


def check_storage(storage: Path, console: Any) -> None:
    """On a cluster, storage_path must be one directory every node sees (checked with a marker
    file read on each node, before any training)."""
    nodes, missing = cluster.unshared_storage(storage)
    if missing:
        raise SpecError([Problem(
            "storage_path", str(storage),
            f"is {storage} but that directory is not visible from {len(missing)} of {nodes} "
            f"nodes ({', '.join(missing)}); trials checkpoint there and resume on any node, so "
            "on a cluster it must be a directory every node mounts at the same path (e.g. NFS)")],
            source="cluster check")
    if console is not None and nodes > 1:
        console.print(f"storage_path {storage}: the same directory on all {nodes} nodes",
                      highlight=False, markup=False)


def check_data(job: TrialJob) -> None:
    """Read the data once on the driver before any trial starts: a missing dataset fails here,
    in seconds, instead of in every trial; and `download: true` fetches it once instead of by
    every concurrent trial at the same time."""
    try:
        load_data(job.data)
    except DatasetMissingError as error:
        raise SpecError([Problem("data.root", job.data.root, str(error))],
                        source="data check") from None


def slots(resources: Resources, totals: dict) -> int:
    """How many trials of this size the cluster runs at once. Used as the default
    `max_concurrent`: with a searcher, Tune otherwise keeps a single trial pending, so free
    slots wait for it (measured: search efficiency 0.78 without vs 0.89 with, on 2 CPUs)."""
    fits = [int(totals.get("CPU", 0) // resources.cpu)]
    if resources.gpu > 0:
        fits.append(int(round(totals.get("GPU", 0) / resources.gpu, 6)))
    return max(1, min(fits))


def cluster_totals() -> dict:
    return ray.cluster_resources()
