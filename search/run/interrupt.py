"""Ctrl+C and SIGTERM end a search as `interrupted`: Tune saves its state, the launch records
the ending and exits 130 (143 for SIGTERM), never 0.

Ray Tune catches SIGINT itself during `Tuner.fit`: it saves the experiment, stops the trials and
*returns* as if the search had finished, then logs its own "Tuner.restore(...)" hint. So Tune's
SIGINT handler is turned off (TUNE_DISABLE_SIGINT_HANDLER) and ours takes both signals: it notes
which one came, runs the launch's hooks (the MLflow mirror learns why its runs end) and hands over
to the graceful stop Tune keeps on SIGUSR1. Before Tune has installed that (start-up), and at a
second signal, it raises KeyboardInterrupt: Tune snapshots at every epoch, so nothing is lost.

`resnet-search stop` ends a search the same way from anywhere that sees its storage: it writes a
request file (search/experiment/stop.py) that a watcher thread of the driver polls; the request
takes the same path as a signal once Tune listens.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


def tune_listens() -> bool:
    """Whether Tune's graceful-stop handler is installed (it is only while `Tuner.fit` runs):
    SIGUSR1 before that would kill the process."""
    return signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)


class Interruption:
    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self.requested: Optional[str] = None  # why a stop was requested (`resnet-search stop`)
        self.hooks: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        if self.signal:
            return signal.Signals(self.signal).name
        return self.requested or ""

    @property
    def interrupted(self) -> bool:
        return bool(self.signal or self.requested)

    def request(self, reason: str) -> bool:
        """End the search as a signal would, for a stop asked from outside. False while Tune
        is not listening yet (ask again later); True once handed over (or already ending)."""
        with self._lock:
            if self.interrupted:
                return True
            if not tune_listens():
                return False
            self.requested = reason
        for hook in self.hooks:
            hook()
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune: snapshot, stop the trials, return
        return True

    def __enter__(self) -> Interruption:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        first = not self.interrupted
        self.signal = self.signal or signum
        if not first or not tune_listens():
            raise KeyboardInterrupt
        for hook in self.hooks:
            hook()
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune: snapshot, stop the trials, return


class StopWatch:
    """A daemon thread that hands a stop request (a file the driver can see) to `interruption`
    within `every_s` seconds of it being written."""

    def __init__(self, requested: Callable[[], Optional[str]], interruption: Interruption,
                 every_s: float = 1.0) -> None:
        self.requested, self.interruption, self.every_s = requested, interruption, every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stop-watch", daemon=True)

    def __enter__(self) -> StopWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._done.wait(self.every_s):
            by = self.requested()
            if by is not None and self.interruption.request(f"stop requested by {by}"):
                return


class MainThreadAbort:
    """Raises an exception in the main thread from another thread: a driver whose lease's
    heartbeat learns that the lease was taken over must stop at once, wherever its main thread
    is. Through a signal (SIGUSR2) because Python runs signal handlers in the main thread, both
    between bytecodes and after a blocking system call that the signal interrupted."""

    SIGNAL = signal.SIGUSR2

    def __init__(self) -> None:
        self.pending: Optional[BaseException] = None
        self._previous: Any = None

    def __enter__(self) -> MainThreadAbort:
        self._previous = signal.signal(self.SIGNAL, self._raise)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(self.SIGNAL, self._previous)

    def abort(self, error: BaseException) -> None:
        self.pending = error
        signal.pthread_kill(threading.main_thread().ident, self.SIGNAL)

    def _raise(self, signum: int, frame: Any) -> None:
        error, self.pending = self.pending, None
        if error is not None:
            raise error
