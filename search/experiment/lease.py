"""One driver per experiment: the lease protocol, shared by its two implementations.

A lease is a small JSON document (`lease.json` in the experiment directory) naming its holder
and refreshed by a heartbeat; whoever holds it drives the experiment. Its two implementations
are siblings, and the caller picks one by the storage (as Optuna's journal file locks do):

    file_lease.FileLease      a directory, also shared across nodes (NFS): hard links
    object_lease.ObjectLease  an object store (S3): conditional writes

This module holds what both share: who a holder is, when a holder is gone (the staleness rule),
when a lease document cannot be believed (the plausibility rule), and the heartbeat thread that
learns when the lease was lost. The lease lives beside the record, where Ray's own sync never
writes (Ray's experiment is in the `ray/` folder below it): a resumed driver's lease is its own.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from search.experiment.storage import StoragePath

log = logging.getLogger("resnet_search.lease")

LEASE_FILE = "lease.json"
TTL_ENV = "RESNET_SEARCH_LEASE_TTL_S"
# 6 missed heartbeats: a stalled NFS write or a GC pause is not a crash.
DEFAULT_TTL_S = 60.0
HEARTBEAT_PER_TTL = 6
_ATTEMPTS = 20  # each retry means the lease changed under us; 20 changes in a row is a storm
PID_MAX = 1 << 22  # Linux's largest pid_max: a larger pid was never a process


def default_ttl_s() -> float:
    """How long a silent heartbeat from another node means its driver is gone. Every launch of
    one experiment must use the same value: `RESNET_SEARCH_LEASE_TTL_S` (seconds), for storage
    whose writes can stall longer than a minute; 60 s otherwise."""
    raw = os.environ.get(TTL_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TTL_S
    except ValueError:
        value = DEFAULT_TTL_S
    return value if math.isfinite(value) and value > 0 else DEFAULT_TTL_S


def heartbeat_for(ttl: float) -> float:
    return ttl / HEARTBEAT_PER_TTL


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    pid_start: Optional[float]  # /proc/<pid>/stat start time: a reused pid is not the holder
    since: float
    heartbeat_at: float
    token: str  # random: tells this holder's lease from a later one of the same pid
    damaged: bool = False  # unreadable or implausible; `heartbeat_at` is then its mtime
    problem: str = ""  # why it is damaged

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
                f"{path} is unreadable or implausible ({holder.problem}; modified "
                f"{max(0, round(now - holder.heartbeat_at))}s ago): it is either being written "
                f"right now or was damaged; it is taken over once it is {default_ttl_s():.0f}s old, so "
                "launch again in a minute, or launch under another --name")
        else:
            message = (
                f"experiment {path.parent} is in use by another launch: {holder.describe(now)}; "
                "wait for that launch to end, stop it (Ctrl+C in its terminal, or "
                f"kill -INT {holder.pid} on {holder.host}), or launch under another --name")
        super().__init__(message)


class LeaseLost(BaseException):
    """This driver's lease was taken over: another launch drives the experiment now.

    A BaseException, like KeyboardInterrupt: Ray Tune's loop catches Exception to stop its
    trials *and save its state*, and a driver that lost its lease must not write anything the
    new holder owns (the record, Ray's state, MLflow's runs)."""

    def __init__(self, path: StoragePath, holder: Optional[Holder]):
        self.holder = holder
        who = holder.describe() if holder is not None and not holder.damaged else "nobody now"
        super().__init__(
            f"lost the lease of experiment {path.parent}: it is held by {who}. This launch "
            "went silent for longer than the lease allows (a stalled storage or machine), so "
            "another launch took the experiment over; this one stopped its trials and changed "
            "nothing, the other continues the search")


# ---- pure rules ----

def is_stale(holder: Holder, *, now: float, this_host: str,
             pid_alive: Callable[[int, Optional[float]], bool], ttl_s: float) -> bool:
    """Whether the holder of a lease is gone, so the lease may be taken over."""
    if holder.damaged:
        # A crash mid-write, a create in progress, a hand edit: only an old file is abandoned.
        return now - holder.heartbeat_at > ttl_s
    if holder.host == this_host:
        # The process table is the truth here, however late its heartbeat.
        return not pid_alive(holder.pid, holder.pid_start)
    # Another node: its heartbeat is all we see (its clock vs ours: the TTL absorbs the skew).
    return now - holder.heartbeat_at > ttl_s


def implausible(holder: Holder, *, now: float, this_host: str, ttl_s: float,
                start_times_known: bool) -> Optional[str]:
    """Why a well-formed lease cannot be believed (a hand edit, another program's file), or
    None. Such a lease is judged as a damaged one: by its age on storage, never by its words,
    so a pid that cannot be checked or a heartbeat in the future cannot hold an experiment
    forever."""
    if not 0 < holder.pid < PID_MAX:
        return f"pid {holder.pid} is not a process id"
    for name in ("since", "heartbeat_at"):
        value = getattr(holder, name)
        if not math.isfinite(value) or value < 0:
            return f"{name} is {value}"
    if holder.heartbeat_at > now + ttl_s:
        return "its heartbeat is in the future"
    if holder.since > holder.heartbeat_at + ttl_s:
        return "it was taken after its last heartbeat"
    if holder.host == this_host and holder.pid_start is None and start_times_known:
        # Every lease written on this host names its process's start time: without it a
        # reused pid (pid 1 is never dead) would keep the lease for ever.
        return "it names no process start time"
    return None


# ---- the document ----

def document(holder: Holder) -> dict:
    """The lease document of `holder`, as JSON holds it."""
    data = asdict(holder)
    del data["damaged"], data["problem"]
    return data


def _damaged(problem: str, mtime: float) -> Holder:
    return Holder(host="?", pid=0, pid_start=None, since=mtime, heartbeat_at=mtime, token="",
                  damaged=True, problem=problem)


def holder_from(raw: bytes, mtime: float, *, now: Optional[float] = None,
                this_host: Optional[str] = None) -> Holder:
    """The holder a lease document names; a damaged holder (judged by `mtime`) when it does
    not parse or cannot be believed."""
    try:
        data = json.loads(raw)
        holder = Holder(host=str(data["host"]), pid=int(data["pid"]),
                        pid_start=None if data.get("pid_start") is None
                        else float(data["pid_start"]),
                        since=float(data["since"]), heartbeat_at=float(data["heartbeat_at"]),
                        token=str(data["token"]))
    except (ValueError, TypeError, KeyError, OverflowError):  # JSONDecodeError: a ValueError
        return _damaged("not a lease document", mtime)
    problem = implausible(holder, now=time.time() if now is None else now,
                          this_host=this_host or socket.gethostname(), ttl_s=default_ttl_s(),
                          start_times_known=process_start(os.getpid()) is not None)
    return _damaged(problem, mtime) if problem else holder


# ---- processes on this host ----

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
    if not 0 < pid < PID_MAX:
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


def new_holder(host: str) -> Holder:
    now, pid = time.time(), os.getpid()
    return Holder(host=host, pid=pid, pid_start=process_start(pid), since=now, heartbeat_at=now,
                  token=secrets.token_hex(16))


def stale(holder: Holder, host: str, ttl: float) -> bool:
    return is_stale(holder, now=time.time(), this_host=host, pid_alive=process_alive, ttl_s=ttl)


# ---- the protocol ----

class Lease(ABC):
    """The right to drive one experiment, held until `release()` (or the end of a `with`).

    A heartbeat thread refreshes it every `heartbeat_s`. When a refresh finds the lease taken
    over, the lease is `lost`: `on_lost` (set by the driver) is called once with the new holder,
    and nothing more is written."""

    def __init__(self, path: StoragePath, holder: Holder, heartbeat_s: float,
                 taken_over: Optional[Holder] = None):
        self.path = path
        self.holder = holder
        self.taken_over = taken_over  # the stale holder this lease replaced, if any
        self.heartbeat_s = heartbeat_s
        self.on_lost: Optional[Callable[[Optional[Holder]], None]] = None
        self.failures = 0  # heartbeats that failed to reach the storage (retried)
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._released = False
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat {path}",
                                        daemon=True)
        self._thread.start()

    # What each storage does its own way.
    @classmethod
    def acquire(cls, directory: StoragePath, *, heartbeat_s: Optional[float] = None,
                ttl_s: Optional[float] = None) -> "Lease":
        """Take the lease of `directory`, or raise LeaseHeld naming its live holder. The TTL
        defaults to `default_ttl_s()`, the heartbeat to a sixth of it."""
        ttl = default_ttl_s() if ttl_s is None else ttl_s
        return cls._acquire(directory, ttl, heartbeat_for(ttl) if heartbeat_s is None
                            else heartbeat_s)

    @classmethod
    @abstractmethod
    def _acquire(cls, directory: StoragePath, ttl: float, beat: float) -> "Lease":
        """Take the lease (create it, or take a stale one over)."""

    @staticmethod
    @abstractmethod
    def read(path: StoragePath) -> Optional[Holder]:
        """The holder of the lease at `path`, or None when there is none."""

    @abstractmethod
    def _renew(self) -> bool:
        """Write a fresh heartbeat: False when the lease is no longer ours. A lease document
        that is ours but damaged (edited by hand) is written anew: the live holder says so."""

    @abstractmethod
    def _remove(self) -> None:
        """Delete the lease, which is ours."""

    # The protocol itself.
    @property
    def lost(self) -> bool:
        """True once another launch took the lease over (this one was judged dead)."""
        return self._lost.is_set()

    def _holds(self) -> bool:
        found = self.read(self.path)
        return found is not None and not found.damaged and found.token == self.holder.token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self._renew():
                    self._lose()
                    return
            except OSError as error:  # storage hiccup (NFS, S3): try again at the next beat
                self.failures += 1
                log.warning("lease heartbeat failed: %s", error)

    def _lose(self) -> None:
        self._lost.set()
        try:
            now_held = self.read(self.path)
        except OSError:
            now_held = None
        log.warning("the lease %s was taken over by another launch", self.path)
        if self.on_lost is not None and not self._stop.is_set():
            self.on_lost(now_held)

    def release(self) -> None:
        """Stop the heartbeat and remove the lease, unless someone else holds it now."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if not self.lost and self._holds():
                self._remove()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
