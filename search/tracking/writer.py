"""One background thread that performs MLflow calls in order, so tracking never stalls training.

A failed call is retried with exponential back-off until it succeeds or its deadline passes; then
it is dropped, counted and logged as one warning line, and the caller never knows. Dropping is
safe because the mirror's reconcile step back-fills from Ray's results, which are the source of
truth. Retrying is safe because every action is idempotent: MLflow's SQL store keeps one copy of
a metric point logged twice with the same key, value, timestamp and step, a failed SQLite write
is rolled back, and the mirror's actions check what exists before they create anything.

Retries hold up the queue on purpose: the actions behind a failing one wait, so MLflow sees them
in the order Tune produced them (a run is created before its metrics, closed after them).

Notes (`note`) are bookkeeping that needs no MLflow, run on the same thread in order with the
actions: state the actions read is then written on their thread only (search.tracking.runbook).

The writer is not pickled (Tune pickles its callbacks): a restored owner starts a fresh one on
its first call.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Optional

from mlflow.tracking import MlflowClient

from search.spec.redact import redact

log = logging.getLogger("resnet_search.tracking")

Action = Callable[[MlflowClient], None]
Note = Callable[[], None]

THREAD = "mlflow-writer"


class _OnWriterThread(logging.Filter):
    """MLflow's SQL store logs every failed call as an ERROR with a traceback. On the writer's
    thread that would be one traceback per retry of an outage; the writer reports each dropped
    call itself, in one line, so those records are left out (other threads keep them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD


_QUIET = _OnWriterThread()


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception as one short log line: MLflow's SQL errors carry the whole statement."""
    lines = redact(str(error)).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:limit]


class _Noted:
    """A note in the queue (told apart from an action, which takes a client)."""

    def __init__(self, change: Note) -> None:
        self.change = change


class Writer:
    def __init__(self, uri: str, deadline_s: float = 120.0, backoff_s: float = 0.25,
                 max_backoff_s: float = 8.0) -> None:
        self.uri = uri
        self.deadline_s = deadline_s  # per action, from its first attempt
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.failures = 0  # actions dropped after their deadline
        self.retries = 0  # attempts after a first failed one
        self._queue: Optional[queue.Queue] = None
        self._client: Optional[MlflowClient] = None

    def __getstate__(self) -> dict:
        # Pickled with the tuner (its URI's secret masked: `relink` gives it back).
        return {"uri": redact(self.uri), "deadline_s": self.deadline_s, "backoff_s": self.backoff_s,
                "max_backoff_s": self.max_backoff_s, "failures": self.failures,
                "retries": self.retries}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["uri"], state.get("deadline_s", 120.0), state.get("backoff_s", 0.25),
                      state.get("max_backoff_s", 8.0))
        self.failures = state.get("failures", 0)
        self.retries = state.get("retries", 0)

    def relink(self, uri: str) -> None:
        """The tracking URI, secret included, for a writer restored from its pickle (before its
        first action: its client is made then)."""
        self.uri, self._client = uri, None

    def submit(self, action: Action) -> None:
        """Queue `action(client)`; returns at once and never raises for MLflow's sake."""
        self._put(action)

    def note(self, change: Note) -> None:
        """Queue `change()`, which needs no MLflow: it runs on the writer's thread after every
        action queued before it, once, whether MLflow answers or not (never retried, never
        dropped); returns at once."""
        self._put(_Noted(change))

    def _put(self, item: object) -> None:
        if self._queue is None:
            self._queue = queue.Queue()
            logging.getLogger("mlflow.store.db.utils").addFilter(_QUIET)  # once: same object
            threading.Thread(target=self._drain, name=THREAD, daemon=True).start()
        self._queue.put(item)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):  # flush's marker: needs no MLflow client
                item.set()
            elif isinstance(item, _Noted):
                try:
                    item.change()
                except Exception:  # noqa: BLE001 - a bug here must not stop the writer
                    log.exception("MLflow tracking bookkeeping failed")
            else:
                self._perform(item)

    def _perform(self, action: Action) -> None:
        start = time.monotonic()
        wait = self.backoff_s
        while True:
            try:
                # The client is made here, not in submit: for a SQL store it opens the database,
                # which can block for as long as the database is locked.
                if self._client is None:
                    self._client = MlflowClient(self.uri)
                action(self._client)
                return
            except Exception as error:  # noqa: BLE001 - tracking must never stop the search
                elapsed = time.monotonic() - start
                if elapsed >= self.deadline_s:
                    self.failures += 1
                    log.warning("MLflow tracking call dropped after %.0f s of retries (%d dropped "
                                "so far; reconcile back-fills it from Ray's results), training "
                                "goes on: %s", elapsed, self.failures, one_line(error))
                    return
                log.debug("MLflow tracking call failed, retrying in %.2f s: %s", wait,
                          one_line(error))
                self.retries += 1
                # The last attempt happens at the deadline, not a full back-off past it.
                time.sleep(min(wait, self.deadline_s - elapsed))
                wait = min(wait * 2, self.max_backoff_s)

    def flush(self, timeout_s: Optional[float] = 60.0) -> bool:
        """Wait (bounded, unless `timeout_s` is None) for the calls queued so far; True when all
        of them ran (succeeded or were dropped)."""
        if self._queue is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)
