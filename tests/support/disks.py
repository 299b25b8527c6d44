"""A real small filesystem for the tests of a full disk: tmpfs of a given size, mounted on a
folder (the tests run as root, as CI does), grown or unmounted as a user would."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[SimpleNamespace]:
    """tmpfs of `size` ("1m", "256k") on the folder `where` (created); `grow(size)` remounts it
    larger, keeping what it holds."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a small filesystem here: {mounted.stderr}"
    try:
        yield SimpleNamespace(path=where, grow=lambda larger="64m": subprocess.run(
            ["mount", "-o", f"remount,size={larger}", str(where)], check=True))
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
