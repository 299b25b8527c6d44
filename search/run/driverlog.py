"""The driver's log, `<experiment>/launch.log`: what the launch printed, for `resnet-search logs`.

The terminal is the driver's only other output, and it is gone with the shell (or, for a Ray
job, kept by Ray on the head). So while a driver runs, everything written to `sys.stderr` (the
progress lines, warnings, the ending) is also appended to the log, colour codes stripped. Each
launch opens with a header line, so a resumed experiment's log reads as one story.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator, TextIO

from search.spec.problems import strip_ansi

LOG_FILE = "launch.log"


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
def teed_stderr(directory: Path) -> Iterator[Path]:
    path = Path(directory) / LOG_FILE
    with open(path, "a", buffering=1, encoding="utf-8") as log:
        log.write(f"=== launch on {socket.gethostname()} pid {os.getpid()} at "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")
        previous = sys.stderr
        sys.stderr = Tee(previous, log)
        try:
            yield path
        finally:
            sys.stderr = previous
