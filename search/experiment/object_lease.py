"""The lease of an experiment on an object store (`storage_path: s3://...`).

The same protocol as file_lease.py (one driver per experiment, a dead holder's lease taken
over), with the object store's conditional writes in place of hard links and the takeover guard:

    create     PUT If-None-Match: *          only one of two racing launches creates it
    take over  PUT If-Match: <ETag judged>   only one of two launches that judged the same
                                             stale lease replaces it; a heartbeat in between
                                             makes both fail, and they read it again
    heartbeat  PUT If-Match: <our last ETag> fails once another launch took it over

S3 has had both conditions since 2024 (as have MinIO and moto). Releasing reads the lease and
deletes it when it is still ours: a takeover that lands between the two (it needs our heartbeat
to be a TTL old first) loses its lease, and its next heartbeat says so.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from typing import Any, Optional

from search.experiment.lease import (
    _ATTEMPTS, LEASE_FILE, Holder, Lease, LeaseError, LeaseHeld, document, holder_from,
    new_holder, stale)
from search.experiment.storage import StoragePath


def read_object(path: Any) -> Optional[tuple[bytes, Holder, str]]:
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
    return raw, holder_from(raw, mtime), str(info.get("ETag", ""))


def _body(holder: Holder) -> bytes:
    return json.dumps(document(holder)).encode()


def _etag(response: object) -> str:
    return str(response.get("ETag", "")) if isinstance(response, dict) else ""


class ObjectLease(Lease):
    def __init__(self, path: StoragePath, holder: Holder, heartbeat_s: float,
                 taken_over: Optional[Holder], etag: str):
        self._etag = etag  # before the heartbeat thread starts
        super().__init__(path, holder, heartbeat_s, taken_over)

    @classmethod
    def _acquire(cls, directory: StoragePath, ttl: float, beat: float) -> "ObjectLease":
        path = directory / LEASE_FILE
        fs, key = path.fs, path.path
        host = socket.gethostname()
        seen: Optional[Holder] = None
        for _ in range(_ATTEMPTS):
            mine = new_holder(host)
            try:
                return cls(path, mine, beat, None,
                           _etag(fs.pipe_file(key, _body(mine), mode="create")))
            except FileExistsError:
                pass
            found = read_object(path)
            if found is None:
                continue  # released between our create and our read
            _, seen, etag = found
            if not stale(seen, host, ttl):
                raise LeaseHeld(seen, path)
            try:
                return cls(path, mine, beat, seen,
                           _etag(fs.pipe_file(key, _body(mine), IfMatch=etag)))
            except OSError:
                continue  # it changed since we judged it: judge it again
        if seen is not None:
            raise LeaseHeld(seen, path)
        raise LeaseError(f"could not take the lease {path}: it kept changing; launch again")

    @staticmethod
    def read(path: StoragePath) -> Optional[Holder]:
        found = read_object(path)
        return found[1] if found else None

    def _renew(self) -> bool:
        beat = replace(self.holder, heartbeat_at=time.time())
        try:
            self._etag = _etag(self.path.fs.pipe_file(self.path.path, _body(beat),
                                                      IfMatch=self._etag))
        except OSError:
            # Failed precondition (taken over, or edited by hand), or a lost reply to a PUT
            # that worked: the object says which.
            found = read_object(self.path)
            if found is None:
                return False
            if found[1].damaged:  # ours, edited: the live holder writes it anew
                self._etag = _etag(self.path.fs.pipe_file(self.path.path, _body(beat),
                                                          IfMatch=found[2]))
                self.holder = beat
                return True
            if found[1].token != self.holder.token:
                return False
            self._etag = found[2]
            raise
        self.holder = beat
        return True

    def _remove(self) -> None:
        self.path.fs.rm_file(self.path.path)
