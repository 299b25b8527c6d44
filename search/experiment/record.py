"""The experiment record: everything a command does with `<storage_path>/<name>/`, in one place.

    experiment = Experiment(locate(...))
    with experiment.lease():
        decision = experiment.decide(spec.resolved(), spec.spec_hash())
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from search.experiment import decide as rule
from search.experiment.decide import Decision
from search.experiment.lease import LEASE_FILE, Holder, Lease, read_holder
from search.experiment.location import Location
from search.experiment.results import SCHEDULER_FILE, Results, read_results
from search.experiment.state import (
    STATE_FILE, DamagedRecord, State, Status, damaged, read_json, read_state, write_json_atomic,
    write_state)
from search.spec.job import TrialJob

SPEC_FILE = "spec.json"


class Experiment:
    def __init__(self, location: Location):
        self.location = location
        self.directory = location.directory
        self.name = location.directory.name

    # ---- state ----
    def state(self) -> Optional[State]:
        return read_state(self.directory)

    def save_state(self, state: State) -> None:
        write_state(self.directory, state)

    def mark(self, status: Status, reason: Optional[str] = None) -> State:
        """Set the status (and why; None clears an old reason) and save it."""
        state = self.state()
        if state is None:
            path = self.directory / STATE_FILE
            raise DamagedRecord(f"{path} is missing, so experiment '{self.name}' cannot be marked "
                                f"{status.value}; launch it again to recreate the record")
        state.status, state.reason, state.updated_at = status, reason, time.time()
        self.save_state(state)
        return state

    # ---- the resolved spec and the scheduler's state ----
    def _mapping(self, file: str) -> Optional[dict]:
        path = self.directory / file
        data = read_json(path)
        if data is not None and not isinstance(data, dict):
            raise damaged(path, f"it holds a JSON {type(data).__name__}, not an object")
        return data

    def saved_spec(self) -> Optional[dict]:
        return self._mapping(SPEC_FILE)

    def save_spec(self, resolved: dict) -> None:
        write_json_atomic(self.directory / SPEC_FILE, resolved)

    def scheduler_state(self) -> dict:
        return self._mapping(SCHEDULER_FILE) or {}

    def save_scheduler_state(self, state: dict) -> None:
        write_json_atomic(self.directory / SCHEDULER_FILE, state)

    # ---- what a launch does ----
    def ray_saved(self) -> bool:
        return rule.ray_saved(self.directory)

    def decide(self, spec: dict, spec_hash: str) -> Decision:
        state = self.state()
        # The saved spec only explains a refusal: a damaged one must not block a resume.
        saved = self.saved_spec() if state is not None and state.spec_hash != spec_hash else None
        return rule.decide(state, saved, spec, spec_hash, self.ray_saved())

    def lease(self, **kw: Any) -> Lease:
        """Lease.acquire(directory, heartbeat_s=, ttl_s=): raises LeaseHeld while in use."""
        return Lease.acquire(self.directory, **kw)

    def holder(self) -> Optional[Holder]:
        return read_holder(self.directory)

    def results(self, job: TrialJob) -> Results:
        return read_results(self.directory, job)

    def move_aside(self, label: str = "aborted") -> Path:
        """Move everything but the lease into a new sibling `<name>.<label>-<time>` and return
        it; the caller keeps holding the lease of the (now empty) directory."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept, n = self.directory.with_name(f"{self.name}.{label}-{stamp}"), 1
        while True:
            try:
                kept.mkdir()
                break
            except FileExistsError:  # moved aside twice within one second
                n += 1
                kept = self.directory.with_name(f"{self.name}.{label}-{stamp}-{n}")
        for entry in self._entries():
            os.rename(self.directory / entry, kept / entry)
        return kept

    def forget(self) -> None:
        """Delete everything but the lease: for a launch that failed before Ray saved anything,
        so that nothing is left that looks like an experiment to resume."""
        if self.ray_saved():
            raise RuntimeError(f"{self.directory} holds a saved Ray experiment: not forgotten")
        for entry in self._entries():
            path = self.directory / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def _entries(self) -> list[str]:
        """What is in the directory, less the lease and its temp files (the caller holds it,
        its heartbeat writes there)."""
        if not self.directory.is_dir():
            return []
        return [entry for entry in sorted(os.listdir(self.directory))
                if entry != LEASE_FILE and not entry.startswith(f".{LEASE_FILE}.")]
