"""`resnet-search stop`: a request file in the experiment directory that its driver obeys.

A file, not a signal: the driver may run on another machine that shares the storage (a cluster
node, a Ray job's driver on the head), where no pid of ours reaches it. The driver looks for the
file between Tune's steps and ends the search exactly as Ctrl+C does (Tune saves, the record says
`interrupted`, the same launch resumes it). A launch clears a request left from an earlier run,
so an old request never stops a resumed search.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from typing import Optional

from search.experiment.storage import StoragePath, as_path
from search.experiment.state import DamagedRecord, read_json, write_json_atomic

STOP_FILE = "stop-request.json"


def who() -> str:
    """'alice@laptop (pid 42)': who asked, for the record's reason and the message."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


def request_stop(directory: StoragePath, by: Optional[str] = None) -> StoragePath:
    path = as_path(directory) / STOP_FILE
    write_json_atomic(path, {"by": by or who(), "at": time.time()})
    return path


def stop_request(directory: StoragePath) -> Optional[str]:
    """Who asked the search in `directory` to stop, or None when nobody did."""
    path = as_path(directory) / STOP_FILE
    if not path.exists():
        return None
    try:
        data = read_json(path)
    except DamagedRecord:  # a half-written request still means somebody asked
        return "an unreadable stop request"
    by = data.get("by") if isinstance(data, dict) else None
    return str(by) if by else "a stop request"


def clear_stop(directory: StoragePath) -> None:
    (as_path(directory) / STOP_FILE).unlink(missing_ok=True)
