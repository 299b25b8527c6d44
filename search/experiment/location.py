"""Where an experiment lives on disk and which MLflow store it reports to.

Every relative path of a spec is relative to the spec file's own directory, never the cwd:
launching `spaces/x.yaml` from the repo root or from `spaces/` must find the same experiment,
and Ray workers and `mlflow ui` run in other directories altogether.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

_SQLITE = "sqlite:///"


@dataclass(frozen=True)
class Location:
    storage: Path  # absolute storage_path
    directory: Path  # storage / name: Ray's experiment directory and our record files
    tracking_uri: str  # the MLflow URI with a relative sqlite path made absolute
    data_root: str  # data.root made absolute ("~" expanded)


def absolute(path: str, base_dir: Path) -> Path:
    """`path` with "~" expanded, made absolute against `base_dir` when relative. `..` is
    folded but symlinks are kept: on shared storage the path every node sees is the one given."""
    expanded = Path(os.path.expanduser(path))
    base = Path(os.path.expanduser(str(base_dir))).absolute()
    return Path(os.path.normpath(expanded if expanded.is_absolute() else base / expanded))


def resolve_tracking_uri(uri: str, base_dir: Path) -> str:
    """A relative `sqlite:///file.db` made absolute against `base_dir`; any other URI (an
    absolute `sqlite:////x.db`, `http(s)://`, `databricks`, ...) is returned unchanged."""
    if not uri.startswith(_SQLITE):
        return uri
    path = uri[len(_SQLITE):]
    if path.startswith("/") or path == ":memory:" or not path:
        return uri
    return _SQLITE + str(absolute(path, base_dir))


def locate(name: str, storage_path: str, mlflow_uri: str, data_root: str,
           base_dir: Path) -> Location:
    storage = absolute(storage_path, base_dir)
    return Location(storage=storage, directory=storage / name,
                    tracking_uri=resolve_tracking_uri(mlflow_uri, base_dir),
                    data_root=str(absolute(data_root, base_dir)))


# "s3://bucket/runs", "gs://...", "file:///...": Ray could write there, but this product's
# record, lease and results reader work on a mounted directory only (for now).
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def storage_problem(storage_path: str, storage: Path) -> Optional[str]:
    """Why the experiments cannot live under `storage` (the spec's `storage_path`, resolved),
    or None. Checked before anything is created: the directory, or the nearest existing
    directory above it, must take a new entry from this process."""
    if _SCHEME.match(storage_path):
        return (f"storage_path is {storage_path!r} but only a directory is supported (a local "
                "one, or on a cluster one every node mounts at the same path, e.g. NFS); "
                "object stores such as s3:// are not supported yet")
    existing = storage
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return (f"storage_path is {storage_path!r} but {existing} is a file, not a directory")
    try:
        Path(tempfile.mkdtemp(prefix=".resnet-search-writable-", dir=existing)).rmdir()
    except OSError as error:
        where = storage if existing == storage else f"{storage} (under {existing})"
        return (f"storage_path is {storage_path!r} but no directory can be written at {where}: "
                f"{error.strerror or error}")
    return None
