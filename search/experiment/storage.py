"""Where an experiment's files live: a local (or NFS) directory, or an object store prefix.

`storage_path` is a directory or a URI that Ray's storage accepts. The record, the results
reader, `stop`, `logs` and `list` use one path type for both, the pathlib API: a `Path` for a
directory, a `UPath` (universal_pathlib over fsspec) for `s3://bucket/prefix`. What pathlib
cannot say the same way for both (an atomic replace, a recursive move or delete, a conditional
create for the lease) is answered here and in lease.py, by asking `is_local`.

Object stores: `s3://` (and S3-compatible servers, MinIO, Ceph: `AWS_ENDPOINT_URL` names the
endpoint, credentials come from the usual AWS variables or files). The lease needs conditional
writes (If-None-Match / If-Match), which S3 has and which not every fsspec store offers, so
other schemes are refused by name rather than run without one driver per experiment.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Union

# A URI's scheme: "s3://bucket/runs", "gs://...", "file:///...".
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
OBJECT_SCHEMES = ("s3",)  # the stores the lease can hold (conditional writes)

# What a process needs to reach an S3 store, said wherever it could not.
S3_ACCESS = ("the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws or an instance "
             "role) and, for a server other than AWS, AWS_ENDPOINT_URL")

StoragePath = Any  # a pathlib.Path or a upath.UPath: the same API for what the record does


class UnsupportedStorage(ValueError):
    """A storage URI whose scheme this product cannot hold a lease on (or not installed)."""


def scheme(text: str) -> str:
    """The URI scheme of `text` ('s3'), or '' for a plain path."""
    found = _SCHEME.match(text)
    return found.group(1).lower() if found else ""


def is_local(path: StoragePath) -> bool:
    """A directory of this machine's filesystem (NFS included), not an object store."""
    return isinstance(path, Path)


def object_path(uri: str) -> StoragePath:
    """The UPath of an object store URI (trailing "/" dropped), or UnsupportedStorage."""
    kind = scheme(uri)
    if kind not in OBJECT_SCHEMES:
        raise UnsupportedStorage(
            f"is {uri!r} but {kind}:// is not supported: use a directory (local, or one every "
            f"node mounts at the same path, e.g. NFS) or {' or '.join(s + '://' for s in OBJECT_SCHEMES)}")
    try:
        from upath import UPath
        import s3fs  # noqa: F401  (UPath needs it for s3://; say so here, not mid-launch)
    except ImportError as error:
        raise UnsupportedStorage(
            f"is {uri!r} but the S3 support is not installed ({error.name} is missing): "
            "pip install 'resnet-search[s3]'") from None
    # No listings cache: s3fs would otherwise answer every later exists()/iterdir() of a listed
    # prefix from memory, and a driver would never see the stop request that arrives there.
    return UPath(uri.rstrip("/"), use_listings_cache=False)


def as_path(where: Union[str, StoragePath]) -> StoragePath:
    """A path of the right kind for a string a user or a record gave (a URI or a path), or the
    path itself when it is one already. "file://" URIs are local paths."""
    if not isinstance(where, str):
        return where
    kind = scheme(where)
    if kind == "file":
        return Path(where[len("file://"):])
    return object_path(where) if kind else Path(where)


def remove_tree(path: StoragePath) -> None:
    """Delete a file or a whole directory (every object under a prefix)."""
    if is_local(path):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    else:
        path.fs.rm(path.path, recursive=True)


def move(source: StoragePath, target: StoragePath) -> None:
    """Move a file or directory to a path that does not exist yet, on the same storage. A
    rename locally; on an object store a copy then a delete of every object (not atomic: a
    move interrupted half way leaves both halves, nothing lost)."""
    if is_local(source):
        source.rename(target)
        return
    fs = source.fs
    # Object by object: fsspec's recursive mv also tries to copy the prefix itself as a key.
    for key in fs.find(source.path) or [source.path]:
        fs.copy(key, target.path + key[len(source.path):])
    fs.rm(source.path, recursive=True)


def read_bytes(path: StoragePath) -> bytes:
    """The file's bytes (FileNotFoundError when there is none). An object is read with one GET:
    s3fs's file objects check the ETag between reads and fail with "no longer exists" when the
    writer replaced the object meanwhile, which a driver does every few seconds."""
    if is_local(path):
        return path.read_bytes()
    return path.fs.cat_file(path.path)


def read_text(path: StoragePath, errors: str = "strict") -> str:
    return read_bytes(path).decode("utf-8", errors=errors)


def entries(directory: StoragePath) -> list[str]:
    """The names directly under a directory (sorted), [] when there is none."""
    if not directory.is_dir():
        return []
    return sorted(child.name for child in directory.iterdir())
