"""The filesystem Ray Tune writes a local experiment through: each file whole or not at all.

Tune saves its snapshot (experiment state, searcher, callbacks) atomically into a staging folder
of the driver's Ray session, then copies that folder into the experiment's `ray/` folder with
pyarrow's `copy_files`; the workers upload checkpoints the same way. pyarrow's local filesystem
writes each file in place, so a driver killed mid-copy left the file it was copying cut short,
and the next launch could not resume (search/experiment/snapshot.py; CI caught it twice, once
with a cut-short experiment state, which nothing can rebuild).

Given to Tune as `storage_filesystem` (a public argument of `RunConfig` and `Tuner.restore`),
this filesystem is pyarrow's local one except that a file is written to a hidden sibling
(`.NAME.HEX.partial`) and renamed over NAME when closed: a reader sees the old file or the new
one, never a part (rename is atomic on POSIX filesystems, NFS included). A write killed midway
leaves only its hidden sibling, which nothing reads. pyarrow pickles it by its handler, so the
workers that upload checkpoints write the same way.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Optional

import pyarrow
import pyarrow.fs

from search.experiment.storage import StoragePath, is_local

PARTIAL = ".partial"  # the suffix of a file being written


def partial_name(path: str) -> str:
    """The hidden sibling a file is written to before it replaces `path` (pure but for the
    random part, which keeps two writers of one file apart)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{secrets.token_hex(4)}{PARTIAL}")


class _WrittenWhole:
    """A binary file object that becomes `path` only when closed; what pyarrow's PythonFile
    wraps for an output stream."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._partial = partial_name(path)
        # "x": a new file with the umask's mode, as pyarrow's own local writes have.
        self._file = open(self._partial, "xb")

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self._file.tell()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
            os.replace(self._partial, self._path)


class WholeFiles(pyarrow.fs.FileSystemHandler):
    """pyarrow's local filesystem with every output stream written whole (see the module)."""

    def __init__(self) -> None:
        self._local = pyarrow.fs.LocalFileSystem()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WholeFiles)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(WholeFiles)

    def __reduce__(self) -> tuple:  # the local filesystem is made again where it is unpickled
        return (WholeFiles, ())

    def get_type_name(self) -> str:
        return "whole-files"

    def normalize_path(self, path: str) -> str:
        return self._local.normalize_path(path)

    def get_file_info(self, paths: list) -> list:
        return self._local.get_file_info(paths)

    def get_file_info_selector(self, selector: pyarrow.fs.FileSelector) -> list:
        return self._local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("the whole-files filesystem does not empty the root directory")

    def delete_file(self, path: str) -> None:
        self._local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self._local.open_input_stream(src) as source, \
                self.open_output_stream(dest, None) as target:
            while chunk := source.read(1 << 24):
                target.write(chunk)

    def open_input_stream(self, path: str) -> Any:
        return self._local.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self._local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return pyarrow.PythonFile(_WrittenWhole(path), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self._local.open_append_stream(path)


def storage_filesystem(storage: StoragePath) -> Optional[pyarrow.fs.FileSystem]:
    """What Tune writes an experiment in `storage` through: whole files for a directory; None
    (Ray's own) for an object store, which writes an object whole or not at all already."""
    return pyarrow.fs.PyFileSystem(WholeFiles()) if is_local(storage) else None
