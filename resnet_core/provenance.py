"""Where a result came from, decided once: the code's version, the packages' versions, the
machine. Every record of a result takes these facts from here: a checkpoint's and a model card's
metadata (resnet_core.train.runtime), a search's parent run (search.run.provenance) and a
benchmark's JSON (bench/common.py). It lives in resnet_core, the lowest floor, so that all of
them may import it, and it imports only the standard library (never torch: the driver, the CLI
and the benchmarks that measure searches run without it; the callers that have a device add
what torch says about it).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Optional

ROOT = Path(__file__).resolve().parents[1]  # the checkout, when the code runs from one
DIRTY = "+dirty"


def dirty(porcelain: str) -> bool:
    """Whether a checkout differs from its commit, from `git status --porcelain` (v1): a tracked
    file added, changed, deleted, renamed or in conflict, staged or not, counts; an untracked
    file (`??`) or an ignored one (`!!`) does not. The code a result ran is the tracked tree: an
    untracked file reaches a result only through a tracked file that imports or reads it, and
    that change is itself dirty; counting them would mark every run from a checkout that holds
    a spec, a benchmark's result or a scratch file dirty, and the mark would say nothing."""
    return any(line[:2] not in ("??", "!!") for line in porcelain.splitlines() if line.strip())


def _git(*args: str, root: Path) -> Optional[str]:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def code_version(root: Path = ROOT) -> Optional[str]:
    """The git commit the code runs from, `+dirty` when the checkout differs from it (`dirty`);
    None when it does not run from a git checkout of its own (an installed package, no git)."""
    found = _git("rev-parse", "--show-toplevel", "HEAD", root=root)
    lines = (found or "").splitlines()
    if len(lines) != 2:
        return None
    top, sha = lines
    if Path(top).resolve() != root.resolve():  # installed inside someone else's checkout
        return None
    status = _git("status", "--porcelain", root=root)
    return sha + (DIRTY if status is not None and dirty(status) else "")


def version(package: str) -> Optional[str]:
    """A package's version: its own `__version__` when this process has imported it (torch's
    names its build, `2.14.1+cu130`, which its distribution's metadata may not), else the
    installed distribution's version, read without importing it (importing torch to ask would
    cost seconds); None when it is not installed."""
    module = sys.modules.get(package.replace("-", "_"))
    own = getattr(module, "__version__", None)
    if own is not None:
        return str(own)  # torch's is a TorchVersion, which weights_only loading refuses
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions(packages: Iterable[str]) -> dict[str, Optional[str]]:
    return {package: version(package) for package in packages}


def machine() -> dict[str, Any]:
    """The machine this process runs on, without a device (the callers add theirs)."""
    return {"python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu": platform.processor() or None,
            "cpu_count": os.cpu_count()}
