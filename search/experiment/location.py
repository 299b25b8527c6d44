"""Where an experiment lives (a directory, or an object store prefix) and which MLflow store it
reports to.

Every relative path of a spec is relative to the spec file's own directory, never the cwd:
launching `spaces/x.yaml` from the repo root or from `spaces/` must find the same experiment,
and Ray workers and `mlflow ui` run in other directories altogether.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from search.experiment.storage import (S3_ACCESS, StoragePath, UnsupportedStorage, as_path,
                                       is_local, scheme)
from search.spec.problems import Problem, SpecError
from search.spec.redact import restored

_SQLITE = "sqlite:///"


@dataclass(frozen=True)
class Location:
    storage: StoragePath  # absolute storage_path: a Path, or a UPath for s3://
    directory: StoragePath  # storage / name: Ray's experiment directory and our record files
    tracking_uri: str  # the MLflow URI with a relative sqlite path made absolute
    data_root: str  # data.root made absolute ("~" expanded)


def absolute(path: str, base_dir: Path) -> Path:
    """`path` with "~" expanded, made absolute against `base_dir` when relative. `..` is
    folded but symlinks are kept: on shared storage the path every node sees is the one given."""
    expanded = Path(os.path.expanduser(path))
    base = Path(os.path.expanduser(str(base_dir))).absolute()
    return Path(os.path.normpath(expanded if expanded.is_absolute() else base / expanded))


def resolve_tracking_uri(uri: str, base_dir: Path) -> str:
    """A relative `sqlite:///file.db` made absolute against `base_dir`; a URI whose secret a file
    keeps masked (an export's) completed from MLFLOW_TRACKING_URI (search.spec.redact); any
    other URI (an absolute `sqlite:////x.db`, `http(s)://`, `databricks`, ...) unchanged."""
    uri = restored(uri)
    if not uri.startswith(_SQLITE):
        return uri
    path = uri[len(_SQLITE):]
    if path.startswith("/") or path == ":memory:" or not path:
        return uri
    return _SQLITE + str(absolute(path, base_dir))


def storage_of(storage_path: str, base_dir: Path) -> StoragePath:
    """The spec's `storage_path` as a path: a URI as given (an object store, or file://), a
    directory made absolute. SpecError (exit 2) for a URI this product cannot use."""
    if not scheme(storage_path):
        return absolute(storage_path, base_dir)
    try:
        return as_path(storage_path)
    except UnsupportedStorage as error:
        raise SpecError([Problem("storage_path", storage_path, str(error))]) from None


def locate(name: str, storage_path: str, mlflow_uri: str, data_root: str,
           base_dir: Path) -> Location:
    storage = storage_of(storage_path, base_dir)
    return Location(storage=storage, directory=storage / name,
                    tracking_uri=resolve_tracking_uri(mlflow_uri, base_dir),
                    data_root=str(absolute(data_root, base_dir)))


def storage_problem(storage_path: str, storage: StoragePath) -> Optional[str]:
    """Why the experiments cannot live under `storage` (the spec's `storage_path`, resolved),
    or None. Checked before anything is created: the directory, or the nearest existing
    directory above it, must take a new entry from this process; an object store must take
    (and give back) an object under the prefix."""
    if not is_local(storage):
        return _object_problem(storage_path, storage)
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


def _object_problem(storage_path: str, storage: StoragePath) -> Optional[str]:
    probe = storage / f".resnet-search-writable-{secrets.token_hex(4)}"
    try:
        probe.write_text("")
        probe.unlink()
    except Exception as error:  # noqa: BLE001  the store's client raises what it likes; all of
        # it (no bucket, no credentials, no endpoint, access denied) means the same to the user
        return (f"storage_path is {storage_path!r} but nothing can be written there "
                f"({type(error).__name__}: {error}); check the bucket and {S3_ACCESS}")
    return None
