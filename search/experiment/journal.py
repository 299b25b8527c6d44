"""The driver's journal of every result: `<experiment>/results/<trial_id>.jsonl`, one line each.

Ray's own copy of a trial's results (`ray/<trial>/result.json`) is written by the driver into a
staging folder and reaches the storage only at Ray's next sync (every 15 s on S3). A node lost
between a result and that sync loses the result's row there for good: the trial resumes on
another node from its checkpoint, and the record read from the storage skips an epoch the
driver had seen (`[1, 3, 4, 5, 6]`). The journal is the driver's own record of what it saw,
written where Ray never writes, so the record, `trials`, `report`, the replay tables and MLflow
agree after any node loss.

On a directory each result is appended as it comes. An object cannot be appended to, so on an
object store each trial's journal is kept in memory and put whole, by a background thread, at
most every `FLUSH_S` seconds and once more at the end. A failed write is counted and logged,
never raised, and tried again: the journal is worth a retry, never a search.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Callable, Optional

from search.experiment.storage import StoragePath, as_path, is_local, read_text

JOURNAL_DIR = "results"
FLUSH_S = 1.0

log = logging.getLogger("resnet_search.journal")


def journal_path(directory: StoragePath, trial_id: str) -> StoragePath:
    return as_path(directory) / JOURNAL_DIR / f"{trial_id}.jsonl"


def read_journal(directory: StoragePath, trial_id: str) -> Optional[list[str]]:
    """The journal's lines of a trial, or None when the driver kept none for it (a trial of an
    experiment from before resnet-search 0.3)."""
    try:
        return read_text(journal_path(directory, trial_id), errors="replace").splitlines()
    except FileNotFoundError:
        return None


def line_of(result: dict) -> str:
    # Ray's results may hold values JSON has no type for (numpy scalars, dates): as text.
    return json.dumps(result, default=str, allow_nan=True)


class Journal:
    """Writes each result the driver sees to the experiment's journal while `keep()` (a driver
    that lost its lease writes no more: the experiment is another's)."""

    def __init__(self, directory: StoragePath, keep: Callable[[], bool] = lambda: True,
                 flush_s: float = FLUSH_S) -> None:
        self.directory = as_path(directory)
        self.keep = keep
        self.flush_s = flush_s
        self.failures = 0
        self._local = is_local(self.directory)
        self._lines: dict[str, list[str]] = {}  # object store: each trial's whole journal
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def append(self, trial_id: str, result: dict) -> None:
        if not self.keep():
            return
        line = line_of(result)
        if self._local:
            path = journal_path(self.directory, trial_id)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            except OSError as error:
                self._failed(path, error)
            return
        with self._lock:
            if trial_id not in self._lines:  # a resumed trial: its journal goes on
                self._lines[trial_id] = read_journal(self.directory, trial_id) or []
            self._lines[trial_id].append(line)
            self._dirty.add(trial_id)

    def flush(self) -> None:
        """Put every trial whose journal grew (an object store; a no-op on a directory)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            pending = {t: "".join(f"{line}\n" for line in self._lines[t]) for t in dirty}
        for trial_id, text in pending.items():
            if not self.keep():
                return
            path = journal_path(self.directory, trial_id)
            try:
                path.write_text(text)
            except Exception as error:  # noqa: BLE001  any client error: counted, retried
                self._failed(path, error)
                with self._lock:
                    self._dirty.add(trial_id)

    def _failed(self, path: StoragePath, error: BaseException) -> None:
        self.failures += 1
        log.warning("could not write %s: %s", path, error)

    def __enter__(self) -> "Journal":
        if not self._local:
            self._thread = threading.Thread(target=self._loop, name="journal", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _loop(self) -> None:
        while not self._done.wait(self.flush_s):
            self.flush()
