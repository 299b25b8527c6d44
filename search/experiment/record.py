"""The experiment record: everything a command does with `<storage_path>/<name>/`, in one place.

    experiment = Experiment(locate(...))
    with experiment.lease():
        decision = experiment.decide(spec.resolved(), spec.spec_hash())
"""

from __future__ import annotations

import fnmatch
import re
import socket
import time
from typing import Any, Callable, Optional, Union

from search.experiment import decide as rule
from search.experiment.decide import RAY_DIR, RAY_TOP_FILES, Decision
from search.experiment import stop
from search.experiment.file_lease import FileLease
from search.experiment.journal import Journal
from search.experiment.lease import LEASE_FILE, Holder, Lease, LeaseLost, default_ttl_s, stale
from search.experiment.object_lease import ObjectLease
from search.experiment.location import Location
from search.experiment.results import SCHEDULER_FILE, Results, read_results
from search.experiment.state import (
    STATE_FILE, DamagedRecord, State, Status, damaged, read_json, read_state, write_json_atomic,
    write_state)
from search.experiment.storage import StoragePath, as_path, entries, is_local, move, remove_tree
from search.experiment.summary import Summary, is_live, job_of_saved, status_of, summarize
from search.spec.job import TrialJob
from search.spec.redact import restored, spec_at_rest

ASIDE_STAMP = "%Y%m%d-%H%M%S"  # when a launch was moved aside: `<name>.<label>-<stamp>[-n]`

SPEC_FILE = "spec.json"


class NoExperiment(Exception):
    """No experiment record where one was looked for. The message says where and what to do."""


def lease_kind(directory: StoragePath) -> type[Lease]:
    """The lease for the storage `directory` is on: a file, or an object (S3)."""
    return FileLease if is_local(directory) else ObjectLease


class Experiment:
    def __init__(self, location: Location):
        self.location = location
        self.directory = location.directory
        self.name = location.directory.name
        self._lease: Optional[Lease] = None  # held by this process (a launch), once taken

    @property
    def ray_directory(self) -> StoragePath:
        """Ray Tune's experiment: `ray/` below the record (decide.ray_directory)."""
        return rule.ray_directory(self.directory)

    @classmethod
    def open(cls, directory: Union[str, StoragePath]) -> "Experiment":
        """The experiment recorded in `directory` (`status`, `stop`, `logs` by path or URI): its
        tracking store comes from the record, not from a spec."""
        directory = as_path(directory).absolute()
        state = read_state(directory)
        if state is None:
            raise NoExperiment(f"{directory} holds no experiment record ({STATE_FILE}); give a "
                               "spec file or an experiment directory under its storage_path")
        return cls(Location(storage=directory.parent, directory=directory,
                            tracking_uri=restored(state.tracking_uri), data_root=""))

    # ---- state ----
    def state(self) -> Optional[State]:
        return read_state(self.directory)

    def holds(self) -> bool:
        """False once this process's lease was lost (True when it holds none: a reader)."""
        return self._lease is None or not self._lease.lost

    def _writable(self) -> None:
        """A launch writes the record only while it holds the lease: once it is lost, the
        record is the new holder's."""
        if not self.holds():
            raise LeaseLost(self._lease.path, self._lease.read(self._lease.path))

    def save_state(self, state: State) -> None:
        self._writable()
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

    def extend(self, spec: dict, spec_hash: str, changes: tuple[str, ...] | list[str]) -> State:
        """A larger budget (decide: EXTEND) becomes the record's: its resolved spec, then its
        hash in the state with the change noted. In that order: a launch killed in between
        leaves the larger spec under the old hash, which the next launch of it finds unchanged
        (decide.py) and extends again."""
        self.save_spec(spec)
        state = self.state()
        if state is None:
            raise DamagedRecord(f"{self.directory / STATE_FILE} is missing, so experiment "
                                f"'{self.name}' cannot be extended")
        state.spec_hash, state.updated_at = spec_hash, time.time()
        if changes:
            state.extended = [*state.extended, {"at": state.updated_at,
                                                "changes": list(changes)}]
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
        self._writable()
        write_json_atomic(self.directory / SPEC_FILE, spec_at_rest(resolved))

    def scheduler_state(self) -> dict:
        return self._mapping(SCHEDULER_FILE) or {}

    def save_scheduler_state(self, state: dict) -> None:
        self._writable()
        write_json_atomic(self.directory / SCHEDULER_FILE, state)

    # ---- what a launch does ----
    def ray_saved(self) -> bool:
        return rule.ray_saved(self.directory)

    def decide(self, spec: dict, spec_hash: str) -> Decision:
        state = self.state()
        # The saved spec only explains a refusal: a damaged one must not block a resume.
        saved = self.saved_spec() if state is not None and state.spec_hash != spec_hash else None
        return rule.decide(state, saved, spec_at_rest(spec), spec_hash, self.ray_saved())

    def lease(self, **kw: Any) -> Lease:
        """Take the experiment's lease (`Lease.acquire(directory, heartbeat_s=, ttl_s=)`):
        raises LeaseHeld while another launch holds it. While it is held, the record's writes
        check it was not lost."""
        self._lease = lease_kind(self.directory).acquire(self.directory, **kw)
        return self._lease

    def holder(self) -> Optional[Holder]:
        return lease_kind(self.directory).read(self.directory / LEASE_FILE)

    def driver(self) -> Optional[Holder]:
        """The driver running the search now (a live lease), or None."""
        holder = self.holder()
        if holder is None or stale(holder, socket.gethostname(), default_ttl_s()):
            return None
        return holder

    def journal(self) -> Journal:
        """The driver's journal of every result (journal.py), written while this process holds
        the lease."""
        return Journal(self.directory, keep=self.holds)

    # ---- stop requests (`resnet-search stop`) ----
    def request_stop(self, by: Optional[str] = None) -> StoragePath:
        return stop.request_stop(self.directory, by)

    def stop_requested(self) -> Optional[str]:
        return stop.stop_request(self.directory)

    def clear_stop(self) -> None:
        if self.holds():  # a request after a takeover is for the new holder
            stop.clear_stop(self.directory)

    # ---- what status and list show ----
    def summary(self, now: Optional[float] = None,
                front: Optional[Callable[[Results], list[str]]] = None) -> Summary:
        """What `status` shows; `front`: see summary.summarize."""
        state, spec = self._recorded()
        driver = self.driver()
        return summarize(self.name, str(self.directory), state,
                         self.results(job_of_saved(spec)), spec,
                         driver.describe() if driver else None,
                         self.stop_requested() is not None, now=now, front=front)

    def recorded_results(self) -> Results:
        """The trials as the record's own spec reads them (`trials`, reports): no spec file
        needed, the experiment's directory (or URI) is enough. `live` when a driver runs the
        search now, as `status` decides it."""
        state, spec = self._recorded()
        results = self.results(job_of_saved(spec))
        driver = self.driver()
        results.live = is_live(status_of(state, driver.describe() if driver else None, False))
        return results

    def _recorded(self) -> tuple[State, dict]:
        state = self.state()
        spec = self.saved_spec()
        if state is None or spec is None:
            missing = STATE_FILE if state is None else SPEC_FILE
            raise NoExperiment(f"{self.directory} holds no experiment record ({missing} is "
                               "missing): it was never launched, or its launch failed before "
                               "computing anything")
        return state, spec

    def results(self, job: TrialJob) -> Results:
        return read_results(self.directory, job)

    def move_ray_below(self) -> bool:
        """Move Ray's files of an experiment from before resnet-search 0.3 (beside the record)
        into `ray/`, where Ray's sync cannot overwrite the record; True if there were any.
        Ray's restore follows a moved experiment (it rebases every trial's paths)."""
        if not rule.legacy_layout(self.directory):
            return False
        ray = self.directory / RAY_DIR
        if is_local(ray):  # an object store has no folders to make
            ray.mkdir(exist_ok=True)
        for entry in self._entries():
            path = self.directory / entry
            if entry == RAY_DIR:
                continue
            if any(fnmatch.fnmatch(entry, glob) for glob in RAY_TOP_FILES) or (
                    path.is_dir() and ((path / "params.json").exists()
                                       or (path / "result.json").exists())):
                move(path, ray / entry)
        return True

    def move_aside(self, label: str = "aborted") -> StoragePath:
        """Move everything but the lease into a new sibling `<name>.<label>-<time>` and return
        it; the caller keeps holding the lease of the (now empty) directory."""
        self._writable()
        stamp = time.strftime(ASIDE_STAMP)
        kept, n = self.directory.with_name(f"{self.name}.{label}-{stamp}"), 1
        while True:
            try:
                # On an object store a prefix is not created, only filled: taken is taken.
                if not kept.exists():
                    kept.mkdir()
                    break
            except FileExistsError:  # moved aside twice within one second
                pass
            n += 1
            kept = self.directory.with_name(f"{self.name}.{label}-{stamp}-{n}")
        for entry in self._entries():
            move(self.directory / entry, kept / entry)
        return kept

    def kept_aside(self) -> list[StoragePath]:
        """The siblings earlier launches were moved aside into (`move_aside`), oldest first."""
        pattern = re.compile(re.escape(self.name) + r"\.[a-z]+-\d{8}-\d{6}(?:-\d+)?")
        return [self.directory.with_name(entry) for entry in entries(self.directory.parent)
                if pattern.fullmatch(entry)]

    def forget(self) -> None:
        """Delete everything but the lease: for a launch that failed before Ray saved anything,
        so that nothing is left that looks like an experiment to resume."""
        self._writable()
        if self.ray_saved():
            raise RuntimeError(f"{self.directory} holds a saved Ray experiment: not forgotten")
        for entry in self._entries():
            remove_tree(self.directory / entry)

    def remove(self) -> None:
        """Delete everything but the lease, Ray's saved state included (`resnet-search rm`,
        which holds the lease meanwhile, so that no launch starts in a half-deleted
        experiment; releasing it deletes the rest)."""
        self._writable()
        for entry in self._entries():
            remove_tree(self.directory / entry)

    def _entries(self) -> list[str]:
        """What is in the directory, less the lease and its temp files (the caller holds it,
        its heartbeat writes there)."""
        return [entry for entry in entries(self.directory)
                if entry != LEASE_FILE and not entry.startswith(f".{LEASE_FILE}.")]


def experiments_in(storage: Union[str, StoragePath]) -> list[StoragePath]:
    """The experiment directories directly under a storage directory (or prefix), by name."""
    storage = as_path(storage)
    return [storage / name for name in entries(storage)
            if (storage / name / STATE_FILE).is_file()]
