"""One background thread that performs MLflow calls in order, so tracking never stalls training.

A failed call is logged loudly and counted; the caller goes on. The writer is not pickled (Tune
pickles its callbacks): a restored owner starts a fresh one on its first call.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Optional

from mlflow.tracking import MlflowClient

log = logging.getLogger("resnet_search.tracking")

Action = Callable[[MlflowClient], None]


class Writer:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.failures = 0
        self._queue: Optional[queue.Queue] = None

    def __getstate__(self) -> dict:
        return {"uri": self.uri, "failures": self.failures}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["uri"])
        self.failures = state.get("failures", 0)

    def submit(self, action: Action) -> None:
        if self._queue is None:
            self._queue = queue.Queue()
            self._client = MlflowClient(self.uri)
            self._thread = threading.Thread(target=self._drain, name="mlflow-writer", daemon=True)
            self._thread.start()
        self._queue.put(action)

    def _drain(self) -> None:
        while True:
            action = self._queue.get()
            try:
                action(self._client)
            except Exception as error:  # noqa: BLE001 - tracking must never stop the search
                self.failures += 1
                log.warning("MLflow tracking failed (%d so far), training goes on: %s",
                            self.failures, error)
            finally:
                self._queue.task_done()

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait (bounded) for the calls queued so far; True when all of them ran."""
        if self._queue is None:
            return True
        done = threading.Event()
        self._queue.put(lambda client: done.set())
        return done.wait(timeout_s)
