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
leaves at most its hidden sibling, which nothing reads; a write that fails (an error, a full
disk) leaves NAME as it was and removes the sibling. pyarrow pickles it by its handler, so the
workers that upload checkpoints write the same way.

A full disk: a sibling needs room for a second copy beside the first, which a disk filled to
the last block has not, while pyarrow's write in place reuses the old file's blocks (Tune's
snapshot files are rewritten at about the same size). So a rewrite of a small file (up to
IN_MEMORY bytes: every snapshot file) is kept in memory until it is closed, and when its sibling
does not fit it is written in place, as before: the snapshot is saved as far as the storage
takes it (the search stops on a full storage_path and resumes from that:
search/run/fullstorage.py), whole unless the driver is also killed during that one write. A new
file (a checkpoint) has no old blocks to reuse: it streams to its sibling and fails with the
disk, at the write that meets it (see `_WrittenWhole` for why not at `close`).
"""

from __future__ import annotations

import contextlib
import errno
import io
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


IN_MEMORY = 16 * 2**20  # a file up to this size is kept in memory until closed (see above)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _remove(path: Optional[str]) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def install(path: str, data: bytes) -> None:
    """Write `data` as the file `path`: through a sibling renamed over it, or, when the disk
    has no room for the sibling, in place over the old file's blocks."""
    partial = partial_name(path)
    try:
        # "x": a new file with the umask's mode, as pyarrow's own local writes have.
        with open(partial, "xb") as out:
            out.write(data)
        os.replace(partial, path)
    except OSError as error:
        _remove(partial)
        if error.errno not in NO_SPACE:
            raise
        with open(path, "wb") as out:
            out.write(data)


class _WrittenWhole:
    """A binary file object that becomes `path` only when closed, and never on a failed write;
    what pyarrow's PythonFile wraps for an output stream.

    pyarrow's C++ copy (`copy_files`, which Tune uploads snapshots and checkpoints with) ignores
    what a Python stream's `close` raises: a file that failed only there was reported copied
    (a checkpoint cut short or missing, which its trial later failed to load: "OSError: [Errno
    22] Invalid argument"). So a new file (every checkpoint) is written to its sibling as it
    comes, unbuffered, and a failure is raised by the write that meets it and undone there
    (pyarrow may never close the stream). A file that exists and is rewritten at up to
    IN_MEMORY bytes (Tune's snapshot files) is kept in memory and installed when closed, in
    place when its sibling does not fit (`install`): rewritten at about its old size, it fits
    in its old blocks. A failure there goes unseen by Tune and leaves the old snapshot, which
    Tune resumes from (or, should even the write in place fail, one cut short, as pyarrow's
    own write leaves it)."""

    def __init__(self, path: str) -> None:
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):  # refused when opened, as pyarrow's local file is
            raise FileNotFoundError(errno.ENOENT, f"no such folder: {folder}", path)
        self._path = path
        # In memory while it is a rewrite of a small file (None: streamed to the sibling).
        self._memory: Optional[io.BytesIO] = io.BytesIO() if os.path.isfile(path) else None
        self._partial: Optional[str] = None  # the sibling, once streamed
        self._fd: Optional[int] = None
        self._written = 0
        self._failed = False
        self._closed = False

    def write(self, data: Any) -> int:
        data = bytes(data)
        try:
            if self._memory is not None and self._written + len(data) <= IN_MEMORY:
                self._memory.write(data)
            else:
                if self._fd is None:
                    self._partial = partial_name(self._path)
                    # O_EXCL: a new file with the umask's mode, as pyarrow's own local writes
                    self._fd = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                       0o666)
                    if self._memory is not None:
                        _write_all(self._fd, self._memory.getvalue())
                        self._memory = None
                _write_all(self._fd, data)
            self._written += len(data)
            return len(data)
        except BaseException:
            self._fail()
            raise

    def _fail(self) -> None:
        """Undo at once (pyarrow may never close a stream whose write failed): NAME stays as
        it was and the sibling goes."""
        self._failed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _remove(self._partial)
        self._partial = None

    def flush(self) -> None:
        pass  # a streamed file is unbuffered; one in memory is written when closed

    def tell(self) -> int:
        return self._written

    @property
    def closed(self) -> bool:
        return self._closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._failed:  # undone when the write failed
            return
        if self._memory is not None:
            install(self._path, self._memory.getvalue())
            return
        if self._fd is None:
            self.write(b"")  # a new file with nothing written: empty, made as any other
        os.close(self._fd)
        self._fd = None
        try:
            os.replace(self._partial, self._path)
        except OSError:
            _remove(self._partial)
            raise


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
