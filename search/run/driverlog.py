"""The driver's log, `<experiment>/launch.log`: what the launch printed, for `resnet-search logs`.

The terminal is the driver's only other output, and it is gone with the shell (or, for a Ray
job, kept by Ray on the head). So while a driver runs, everything written to `sys.stderr` (the
progress lines, warnings, the ending) is also appended to the log, colour codes stripped. Each
launch opens with a header line, so a resumed experiment's log reads as one story.

An object (storage_path on s3://) cannot be appended to: there the log is written to a local
copy, started from what the store holds, and uploaded whole every few seconds and at the end.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, TextIO

from search.experiment.storage import StoragePath, as_path, is_local, read_bytes
from search.spec.problems import strip_ansi

LOG_FILE = "launch.log"
UPLOAD_S = 5.0  # how stale `logs` of a search on an object store may be

log = logging.getLogger("resnet_search.driverlog")


class Tee(io.TextIOBase):
    """A text stream that writes to `primary` (it decides isatty, so colours stay right on a
    terminal) and, plain, to `copy`. A failing copy never breaks the primary."""

    def __init__(self, primary: TextIO, copy: TextIO) -> None:
        self.primary, self.copy = primary, copy

    def write(self, text: str) -> int:
        written = self.primary.write(text)
        with contextlib.suppress(OSError, ValueError):
            self.copy.write(strip_ansi(text))
        return written

    def flush(self) -> None:
        self.primary.flush()
        with contextlib.suppress(OSError, ValueError):
            self.copy.flush()

    def isatty(self) -> bool:
        return self.primary.isatty()

    def fileno(self) -> int:
        return self.primary.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.primary, "encoding", "utf-8")


@contextlib.contextmanager
def teed_stderr(directory: StoragePath,
                keep: Callable[[], bool] = lambda: True) -> Iterator[StoragePath]:
    """Everything written to stderr also goes to the experiment's log; on an object store it is
    uploaded while `keep()` (a driver that lost its lease uploads no more: the log is the new
    holder's)."""
    directory = as_path(directory)
    if is_local(directory):
        with _teed(directory / LOG_FILE):
            yield directory / LOG_FILE
        return
    remote = directory / LOG_FILE
    with tempfile.TemporaryDirectory(prefix="resnet-search-log-") as tmp:
        local = Path(tmp) / LOG_FILE
        with contextlib.suppress(FileNotFoundError):
            local.write_bytes(read_bytes(remote))
        uploads = Uploads(local, remote, keep)
        try:
            with _teed(local), uploads.every(UPLOAD_S):
                yield remote
        finally:
            uploads.once()


@contextlib.contextmanager
def _teed(path: Path) -> Iterator[None]:
    with open(path, "a", buffering=1, encoding="utf-8") as copy:
        copy.write(f"=== launch on {socket.gethostname()} pid {os.getpid()} at "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")
        previous = sys.stderr
        sys.stderr = Tee(previous, copy)
        try:
            yield
        finally:
            sys.stderr = previous


class Uploads:
    """Copies the local log to the store when it has grown. A failed upload is counted and
    logged, never raised: the log is not worth a search."""

    def __init__(self, local: Path, remote: StoragePath,
                 keep: Callable[[], bool] = lambda: True) -> None:
        self.local, self.remote, self.keep = local, remote, keep
        self.failures = 0
        self._sent = -1

    def once(self) -> None:
        if not self.keep():
            return
        try:
            data = self.local.read_bytes()
            if len(data) != self._sent:
                self.remote.write_bytes(data)
                self._sent = len(data)
        except Exception as error:  # noqa: BLE001  any client error: counted, tried again
            self.failures += 1
            log.warning("could not upload %s: %s", self.remote, error)

    @contextlib.contextmanager
    def every(self, seconds: float) -> Iterator[None]:
        done = threading.Event()

        def loop() -> None:
            while not done.wait(seconds):
                self.once()

        thread = threading.Thread(target=loop, name="launch.log upload", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
