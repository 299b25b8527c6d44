"""Processes of one e2e test: found and killed by the HOME the test gave them.

Every driver (and every Ray process it or `ray start` spawns) runs with HOME set to a directory
of its own test, so a test can sweep up exactly its processes — never `ray stop --force`, which
stops the Ray of everything else on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import ray  # noqa: F401  (first: it puts its bundled psutil on sys.path)

import psutil  # noqa: E402  (ships inside Ray: ray/thirdparty_files)


def ours(home: Path) -> list[psutil.Process]:
    """Live processes whose HOME is this test's directory (its driver and Ray processes)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get("HOME") == str(home):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def kill_ours(home: Path) -> None:
    """SIGKILL what is left of this test's processes. Not `ray stop --force`: that would stop
    the Ray of every other test running on the machine."""
    procs = ours(home)
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=20)


def trial_worker(home: Path) -> Optional[psutil.Process]:
    """This test's Ray worker running our function trainable (its title is
    `ray::ImplicitFunc...`), or None."""
    for proc in ours(home):
        try:
            if "ImplicitFunc" in " ".join(proc.cmdline()):
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return None
