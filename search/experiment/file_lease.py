"""The lease of an experiment in a directory, also one that several nodes share (NFS).

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
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

from search.experiment.lease import (
    _ATTEMPTS, LEASE_FILE, Holder, Lease, LeaseError, LeaseHeld, document, holder_from,
    new_holder, stale)
from search.experiment.state import write_json_atomic
from search.experiment.storage import StoragePath

log = logging.getLogger("resnet_search.lease")

GUARD_WAIT_S = 5.0  # a takeover holds the guard for milliseconds; wait this long for one


def read_file(path: Path) -> Optional[tuple[bytes, Holder]]:
    """The raw lease file and its holder, or None when there is no lease."""
    try:
        with open(path, "rb") as handle:
            mtime = os.fstat(handle.fileno()).st_mtime
            raw = handle.read()
    except FileNotFoundError:
        return None
    return raw, holder_from(raw, mtime)


def _write(handle_fd: int, holder: Holder) -> None:
    with os.fdopen(handle_fd, "wb") as handle:
        handle.write(json.dumps(document(holder)).encode())
        handle.flush()
        os.fsync(handle.fileno())


def _create(path: Path, holder: Holder) -> bool:
    """Create the lease file holding `holder` unless one exists. A hard link of a complete
    temp file: atomic even on NFS, and never seen empty or half written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    try:
        _write(fd, holder)
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
    _write(fd, holder)
    return True


def take_over(path: Path, judged: bytes) -> bool:
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


def _remove_stale(path: Path, judged: bytes, host: str, ttl: float) -> bool:
    """Remove the stale lease read as `judged`, under the takeover guard; False when it changed
    meanwhile (another launch took over first: the caller reads the lease again)."""
    guard = path.with_name(f".{path.name}.takeover")
    mine = new_holder(host)
    deadline = time.time() + GUARD_WAIT_S
    while not _create(guard, mine):
        found = read_file(guard)
        if found is None:
            continue
        raw, other = found
        if stale(other, host, ttl):
            # A launch crashed mid-takeover. Unguarded, but it takes a crash inside a window
            # of milliseconds and then a three-way race to go wrong.
            take_over(guard, raw)
        elif time.time() > deadline:
            raise LeaseHeld(other, path)  # it is taking the lease over: it is the holder
        else:
            time.sleep(0.01)
    try:
        # Under the guard nobody else removes the lease, and its dead holder writes nothing,
        # so the file moved aside is the one judged (`take_over` checks it all the same).
        found = read_file(path)
        return found is not None and found[0] == judged and take_over(path, judged)
    finally:
        found = read_file(guard)
        if found is not None and found[1].token == mine.token:
            os.unlink(guard)


class FileLease(Lease):
    @classmethod
    def _acquire(cls, directory: StoragePath, ttl: float, beat: float) -> "FileLease":
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / LEASE_FILE
        host = socket.gethostname()
        taken_over: Optional[Holder] = None
        seen: Optional[Holder] = None
        for _ in range(_ATTEMPTS):
            mine = new_holder(host)
            if _create(path, mine):
                return cls(path, mine, beat, taken_over)
            found = read_file(path)
            if found is None:
                continue  # released (or moved aside) between our create and our read
            raw, seen = found
            if not stale(seen, host, ttl):
                raise LeaseHeld(seen, path)
            if _remove_stale(path, raw, host, ttl):
                taken_over = seen
        if seen is not None:
            raise LeaseHeld(seen, path)
        raise LeaseError(f"could not take the lease {path}: it kept changing; launch again")

    @staticmethod
    def read(path: StoragePath) -> Optional[Holder]:
        found = read_file(Path(path))
        return found[1] if found else None

    def _renew(self) -> bool:
        found = read_file(self.path)
        if found is None:
            return False  # removed: whoever launches next takes it
        if not found[1].damaged and found[1].token != self.holder.token:
            return False  # taken over
        beat = replace(self.holder, heartbeat_at=time.time())
        write_json_atomic(self.path, document(beat))  # replaced whole: never seen half written
        self.holder = beat
        return True

    def _remove(self) -> None:
        os.unlink(self.path)

