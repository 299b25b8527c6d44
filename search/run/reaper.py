"""Nothing of a driver's local Ray outlives the driver.

Ray's per-node agents (`ray::DashboardAgent`, `ray::RuntimeEnvAgent`) and its workers run in
process groups of their own, so when the driver is SIGKILLed (or its terminal's process group
is) they stay alive (measured: 30 s later and beyond). Every process Ray starts inherits the
driver's environment, so the launch marks it with a token of its session before `ray.init`, and
a small guardian process, in a session of its own, waits for the driver to die and then ends
exactly the processes carrying that token: found by session, never by name. After a normal end
`ray.shutdown()` has already stopped them and the guardian finds nothing.

Linux only (it reads /proc); elsewhere no guardian is started.

    python -m search.run.reaper DRIVER_PID TOKEN
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

MARK = "RESNET_SEARCH_SESSION"


def mark_session() -> str:
    """Mark this process's environment (inherited by every process Ray starts from now on)."""
    token = os.environ.get(MARK) or uuid.uuid4().hex
    os.environ[MARK] = token
    return token


def processes_of(token: str) -> list[int]:
    """Live processes (other than this one) whose environment carries the session's token."""
    needle = f"{MARK}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def reap(token: str, grace_s: float = 5.0) -> list[int]:
    """SIGTERM every process of the session, SIGKILL what is left after `grace_s`."""
    pids = processes_of(token)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 0)
        while time.monotonic() < deadline and processes_of(token):
            time.sleep(0.2)
        pids = processes_of(token)
        if not pids:
            break
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purpose (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def start_guardian(token: str) -> subprocess.Popen | None:
    """Watch this driver from a process of its own session (a kill of the driver's process
    group does not reach it) and reap the session when the driver is gone."""
    if not Path("/proc/self/environ").exists():
        return None
    env = {k: v for k, v in os.environ.items() if k != MARK}  # the guardian is not Ray's
    return subprocess.Popen([sys.executable, "-m", "search.run.reaper", str(os.getpid()), token],
                            env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str]) -> None:
    driver, token = int(argv[0]), argv[1]
    while alive(driver):
        time.sleep(0.5)
    reap(token)


if __name__ == "__main__":
    main(sys.argv[1:])
