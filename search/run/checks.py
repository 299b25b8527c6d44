"""Checks a launch makes on the running Ray before any trial starts: what the trials ask for
exists, every node sees the storage, the data can be read. Each failure is a `SpecError` naming
the field of the spec that cannot work here (exit 2)."""

from __future__ import annotations

import os
from typing import Any, Callable

import ray

from resnet_core.config import DataConfig
from resnet_core.data import DatasetMissingError, load_data
from resnet_core.data.sources import torchvision_module
from search.experiment.storage import S3_ACCESS, StoragePath, is_local
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


def check_nodes(storage: StoragePath, data: DataConfig, resources: Resources, console: Any) -> None:
    """On a cluster, before any training: every node sees `storage_path`, and every node that
    can run a trial reads the dataset at `data.root`. Both problems are reported at once."""
    problems = storage_problems(storage, console) + data_problems(data, resources, console)
    if problems:
        raise SpecError(problems, source="cluster check")


def storage_problems(storage: StoragePath, console: Any) -> list[Problem]:
    """On a cluster, storage_path must be one directory every node sees (checked with a marker
    file read on each node, before any training)."""
    nodes, missing = cluster.unshared_storage(storage, note=_note(console))
    if missing and not is_local(storage):
        return [Problem(
            "storage_path", str(storage),
            f"is {storage} but {len(missing)} of {nodes} nodes cannot read it "
            f"({', '.join(missing)}); trials checkpoint there and resume on any node, so every "
            f"node needs {S3_ACCESS}")]
    if missing:
        return [Problem(
            "storage_path", str(storage),
            f"is {storage} but that directory is not visible from {len(missing)} of {nodes} "
            f"nodes ({', '.join(missing)}); trials checkpoint there and resume on any node, so "
            "on a cluster it must be a directory every node mounts at the same path (e.g. NFS)")]
    seen = "the same directory" if is_local(storage) else "read back"
    _say(console, nodes > 1, f"storage_path {storage}: {seen} on all {nodes} nodes")
    return []


# The CIFAR datasets by the torchvision classes that read them: the files a node needs are the
# ones those classes open (and md5-check), and the official archive the one they fetch; asked
# of torchvision only for a CIFAR dataset (resnet_core/data/sources.py says what loading it
# costs).
TORCHVISION_CLASSES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def _torchvision_class(dataset: str) -> Any:
    return getattr(torchvision_module().datasets, TORCHVISION_CLASSES[dataset])


def _cifar_files(dataset: str) -> list[str]:
    cls = _torchvision_class(dataset)
    names = [file for file, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return [f"{cls.base_folder}/"] + [f"{cls.base_folder}/{file}" for file in names]


# What each dataset of resnet_core's registry (resnet_core/data/datasets.py DATASETS) reads under
# data.root, as paths relative to it ("x/" a directory): what a node must have to train on it.
DATA_FILES: dict[str, Callable[[], list[str]]] = {
    **{dataset: (lambda d=dataset: _cifar_files(d)) for dataset in TORCHVISION_CLASSES},
    "imagefolder": lambda: ["train/"],  # class folders inside; test/ is optional
}
NO_FILES = frozenset({"digits", "synthetic"})  # generated in the process: nothing to check


def data_fix(dataset: str, root: str, download: bool) -> str:
    """What to do about nodes that cannot read `dataset`'s files under `root`."""
    fix = "copy the dataset to that path on those nodes or mount it there (e.g. NFS)"
    if dataset in TORCHVISION_CLASSES:
        cls = _torchvision_class(dataset)
        fix += (f", e.g. extract the official archive {cls.filename} ({cls.url}) into {root} "
                f"on each (it makes {root}/{cls.base_folder}/)")
        if not download:
            fix += ", or set data.download: true where the nodes have internet"
    return fix


def data_paths(data: DataConfig) -> list[str]:
    """The absolute paths a node reads for `data` (empty when the dataset has no files)."""
    if data.dataset in NO_FILES:
        return []
    root = os.path.expanduser(str(data.root)).rstrip("/")
    return [f"{root}/"] + [f"{root}/{path}" for path in DATA_FILES[data.dataset]()]


def trial_nodes(nodes: list[dict], resources: Resources) -> list[dict]:
    """The nodes Ray can place a trial on (a head started with --num-cpus=0 runs none)."""
    def fits(node: dict) -> bool:
        have = node.get("Resources", {})
        return (have.get("CPU", 0) >= resources.cpu
                and (resources.gpu == 0 or have.get("GPU", 0) >= resources.gpu))

    return [node for node in nodes if fits(node)]


def data_problems(data: DataConfig, resources: Resources, console: Any) -> list[Problem]:
    """On a cluster the driver's own disk says nothing about the workers' (the pre-flight does
    not read the data with --address): each node that can run a trial looks for the dataset's
    files at data.root, without loading them. A node without them would fail every trial Ray
    gives it, after the search had started. With `download: true` a node that lacks them passes
    when it can create data.root (its trials download there)."""
    paths = data_paths(data)
    nodes = trial_nodes(cluster.alive_nodes(), resources)
    if not paths or not nodes:
        return []
    root = paths[0].rstrip("/") or "/"
    unable = cluster.nodes_unable_to_read(nodes, paths, root if data.download else None,
                                          note=_note(console))
    if unable:
        which = "; ".join(f"{name}: {why}" for name, why in unable)
        fix = data_fix(data.dataset, root, data.download)
        return [Problem("data.root", str(data.root),
                        f"is {root} but {len(unable)} of {len(nodes)} nodes that run trials "
                        f"cannot read the {data.dataset} data there ({which}); every such node "
                        f"needs it at the same path: {fix}")]
    _say(console, True, f"data.root {root}: the {data.dataset} data on all {len(nodes)} nodes "
                        "that run trials")
    return []


def _note(console: Any) -> Any:
    """Where a check's waiting lines go (search/wait): the launch's console."""
    return lambda text: _say(console, True, text)


def _say(console: Any, when: bool, text: str) -> None:
    if console is not None and when:
        console.print(text, highlight=False, markup=False)


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
