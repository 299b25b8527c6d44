"""One driver per experiment, also across nodes that share the storage (NFS, or an object store:
object_lease.py does the same with S3's conditional writes).

`flock` is not honoured across NFS clients, so the lease is a file that only one process can
create (a hard link of a complete temp file: atomic on NFS, and nobody ever sees it half
written), refreshed by a heartbeat. A lease whose holder is gone is taken over: on the same host
when its process is dead, on another host when its heartbeat is older than the TTL.

Removing a stale lease is the one step that is not a single atomic create, so launches take
turns at it under a second, short-lived file (the takeover guard). Without it, a launch that
judged the stale lease a moment too late moves aside the fresh lease of the launch that already
took over, and a third launch creates its own in the gap: two drivers.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from search.experiment.state import write_json_atomic
from search.experiment.storage import StoragePath, as_path, is_local

log = logging.getLogger("resnet_search.lease")

LEASE_FILE = "lease.json"
HEARTBEAT_S = 10.0
TTL_S = 60.0  # 6 missed heartbeats: a stalled NFS write or a GC pause is not a crash
_ATTEMPTS = 20  # each retry means the file changed under us; 20 changes in a row is a storm
GUARD_WAIT_S = 5.0  # a takeover holds the guard for milliseconds; wait this long for one


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    pid_start: Optional[float]  # /proc/<pid>/stat start time: a reused pid is not the holder
    since: float
    heartbeat_at: float
    token: str  # random: tells this holder's file from a later one of the same pid
    damaged: bool = False  # the file could not be parsed; `heartbeat_at` is then its mtime

    def describe(self, now: Optional[float] = None) -> str:
        """'pid 123 on node-1, since 2026-01-01 10:00:00 (heartbeat 4s ago)'."""
        now = time.time() if now is None else now
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return (f"pid {self.pid} on {self.host}, since {since} "
                f"(heartbeat {max(0, round(now - self.heartbeat_at))}s ago)")


class LeaseError(Exception):
    """The lease could not be acquired. The message says why and what to do."""


class LeaseHeld(LeaseError):
    def __init__(self, holder: Holder, path: StoragePath, now: Optional[float] = None):
        self.holder = holder
        now = time.time() if now is None else now
        if holder.damaged:
            message = (
                f"{path} is being written by another launch right now (modified "
                f"{max(0, round(now - holder.heartbeat_at))}s ago); wait a minute and launch "
                "again, or launch under another --name")
        else:
            message = (
                f"experiment {path.parent} is in use by another launch: {holder.describe(now)}; "
                "wait for that launch to end, stop it (Ctrl+C in its terminal, or "
                f"kill -INT {holder.pid} on {holder.host}), or launch under another --name")
        super().__init__(message)


def process_start(pid: int) -> Optional[float]:
    """The start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22), or None
    where there is no /proc or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return float(fields[19])  # fields[0] is field 3
    except (IndexError, ValueError):
        return None


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] in ("Z", "X")  # exited, not yet reaped


def process_alive(pid: int, start: Optional[float]) -> bool:
    """Whether process `pid` runs and is the one that started at `start` (when known)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if _zombie(pid):
        return False
    now_start = process_start(pid)
    return start is None or now_start is None or now_start == start


def is_stale(holder: Holder, *, now: float, this_host: str,
             pid_alive: Callable[[int, Optional[float]], bool], ttl_s: float = TTL_S) -> bool:
    """Whether the holder of a lease is gone, so the lease may be taken over."""
    if holder.damaged:
        # A crash mid-write, or a create in progress: only an old file is abandoned.
        return now - holder.heartbeat_at > ttl_s
    if holder.host == this_host:
        # The process table is the truth here, however late its heartbeat.
        return not pid_alive(holder.pid, holder.pid_start)
    # Another node: its heartbeat is all we see (its clock vs ours: the TTL absorbs the skew).
    return now - holder.heartbeat_at > ttl_s


def _holder_from(raw: bytes, mtime: float) -> Holder:
    try:
        data = json.loads(raw)
        return Holder(host=str(data["host"]), pid=int(data["pid"]),
                      pid_start=None if data.get("pid_start") is None else float(data["pid_start"]),
                      since=float(data["since"]), heartbeat_at=float(data["heartbeat_at"]),
                      token=str(data["token"]))
    except (ValueError, TypeError, KeyError):  # JSONDecodeError is a ValueError
        return Holder(host="?", pid=0, pid_start=None, since=mtime, heartbeat_at=mtime,
                      token="", damaged=True)


def _read(path: StoragePath) -> Optional[tuple[bytes, Holder]]:
    """The raw lease file and its holder, or None when there is no lease."""
    if not is_local(path):
        found = read_object(path)
        return None if found is None else found[:2]
    try:
        with open(path, "rb") as handle:
            mtime = os.fstat(handle.fileno()).st_mtime
            raw = handle.read()
    except FileNotFoundError:
        return None
    return raw, _holder_from(raw, mtime)


def read_object(path: StoragePath) -> Optional[tuple[bytes, Holder, str]]:
    """The raw lease object, its holder and its ETag, or None when there is no lease. The ETag
    is read first: if the object changes before its body is read, a write conditional on that
    ETag fails, which is what a changed lease must do."""
    try:
        info = path.fs.info(path.path, refresh=True)
        raw = path.fs.cat_file(path.path)
    except FileNotFoundError:
        return None
    modified = info.get("LastModified")
    mtime = modified.timestamp() if hasattr(modified, "timestamp") else time.time()
    return raw, _holder_from(raw, mtime), str(info.get("ETag", ""))


def read_holder(directory: StoragePath) -> Optional[Holder]:
    """Who holds the experiment's lease (for status commands), or None."""
    found = _read(as_path(directory) / LEASE_FILE)
    return found[1] if found else None


def live_holder(directory: StoragePath, ttl_s: float = TTL_S) -> Optional[Holder]:
    """The driver holding the experiment's lease now, or None (no lease, or its holder gone)."""
    holder = read_holder(directory)
    if holder is None or _stale(holder, socket.gethostname(), ttl_s):
        return None
    return holder


def _encode(holder: Holder) -> dict:
    data = asdict(holder)
    del data["damaged"]
    return data


def _create(path: Path, holder: Holder) -> bool:
    """Create the lease file holding `holder` unless one exists. A hard link of a complete
    temp file: atomic even on NFS, and never seen empty or half written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(_encode(holder), handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            # NFS: a retried LINK whose first reply was lost answers EEXIST although it worked.
            return os.stat(tmp).st_nlink == 2
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            return _create_exclusive(path, holder)  # no hard links on this filesystem
    finally:
        os.unlink(tmp)


def _create_exclusive(path: Path, holder: Holder) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(_encode(holder), handle)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _take_over(path: Path, judged: bytes) -> bool:
    """Remove the stale file judged from the bytes `judged`: move it to a unique tombstone,
    then check that what was moved is what was judged. If it changed in between (a heartbeat:
    its holder lives after all), put it back and say so."""
    tomb = path.with_name(f".{path.name}.stale-{secrets.token_hex(8)}")
    try:
        os.rename(path, tomb)
    except FileNotFoundError:
        return False  # someone else moved it first: start over
    try:
        if tomb.read_bytes() == judged:
            return True
        try:
            os.link(tomb, path)  # put the live lease back, unless a new one exists already
        except FileExistsError:
            log.warning("a lease moved aside by mistake could not be put back: %s", path)
        return False
    finally:
        os.unlink(tomb)


def _me(host: str) -> Holder:
    now, pid = time.time(), os.getpid()
    return Holder(host=host, pid=pid, pid_start=process_start(pid), since=now, heartbeat_at=now,
                  token=secrets.token_hex(16))


def _stale(holder: Holder, host: str, ttl_s: float) -> bool:
    return is_stale(holder, now=time.time(), this_host=host, pid_alive=process_alive, ttl_s=ttl_s)


def _remove_stale(path: Path, judged: bytes, host: str, ttl_s: float) -> bool:
    """Remove the stale lease read as `judged`, under the takeover guard; False when it changed
    meanwhile (another launch took over first: the caller reads the lease again)."""
    guard = path.with_name(f".{path.name}.takeover")
    mine = _me(host)
    deadline = time.time() + GUARD_WAIT_S
    while not _create(guard, mine):
        found = _read(guard)
        if found is None:
            continue
        raw, other = found
        if _stale(other, host, ttl_s):
            # A launch crashed mid-takeover. Unguarded, but it takes a crash inside a window
            # of milliseconds and then a three-way race to go wrong.
            _take_over(guard, raw)
        elif time.time() > deadline:
            raise LeaseHeld(other, path)  # it is taking the lease over: it is the holder
        else:
            time.sleep(0.01)
    try:
        # Under the guard nobody else removes the lease, and its dead holder writes nothing,
        # so the file moved aside is the one judged (`_take_over` checks it all the same).
        found = _read(path)
        return found is not None and found[0] == judged and _take_over(path, judged)
    finally:
        found = _read(guard)
        if found is not None and found[1].token == mine.token:
            os.unlink(guard)


class Lease:
    """The right to drive one experiment, held until `release()` (or the end of a `with`)."""

    def __init__(self, path: StoragePath, holder: Holder, heartbeat_s: float,
                 taken_over: Optional[Holder] = None):
        self.path = path
        self.holder = holder
        self.taken_over = taken_over  # the stale holder this lease replaced, if any
        self.heartbeat_s = heartbeat_s
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._released = False
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat {path}",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def acquire(cls, directory: StoragePath, *, heartbeat_s: float = HEARTBEAT_S,
                ttl_s: float = TTL_S) -> "Lease":
        """Take the lease of `directory`, or raise LeaseHeld naming its live holder."""
        directory = as_path(directory)
        if not is_local(directory):
            from search.experiment.object_lease import ObjectLease

            return ObjectLease.acquire(directory, heartbeat_s=heartbeat_s, ttl_s=ttl_s)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / LEASE_FILE
        host = socket.gethostname()
        taken_over: Optional[Holder] = None
        seen: Optional[Holder] = None
        for _ in range(_ATTEMPTS):
            mine = _me(host)
            if _create(path, mine):
                return cls(path, mine, heartbeat_s, taken_over)
            found = _read(path)
            if found is None:
                continue  # released (or moved aside) between our create and our read
            raw, seen = found
            if not _stale(seen, host, ttl_s):
                raise LeaseHeld(seen, path)
            if _remove_stale(path, raw, host, ttl_s):
                taken_over = seen
        if seen is not None:
            raise LeaseHeld(seen, path)
        raise LeaseError(f"could not take the lease {path}: it kept changing; launch again")

    @property
    def lost(self) -> bool:
        """True once another launch took the lease over (this one was judged dead)."""
        return self._lost.is_set()

    def _holds(self) -> bool:
        found = _read(self.path)
        return found is not None and not found[1].damaged and found[1].token == self.holder.token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self._renew():
                    self._lost.set()
                    log.warning("the lease %s was taken over by another launch", self.path)
                    return
            except OSError as error:  # storage hiccup (NFS, S3): try again at the next beat
                log.warning("lease heartbeat failed: %s", error)

    def _renew(self) -> bool:
        """Write a fresh heartbeat; False when the lease is no longer ours."""
        if not self._holds():
            return False
        beat = replace(self.holder, heartbeat_at=time.time())
        write_json_atomic(self.path, _encode(beat))
        self.holder = beat
        return True

    def _remove(self) -> None:
        os.unlink(self.path)

    def release(self) -> None:
        """Stop the heartbeat and remove the lease file, unless someone else holds it now."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if self._holds():
                self._remove()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

