"""Ctrl+C, SIGTERM and SIGHUP end a search as `interrupted`: Tune saves its state, the launch
records the ending and exits 130 (143 for SIGTERM, 129 for SIGHUP), never 0.

SIGHUP is a closed terminal (a dropped SSH session, a closed window): the search is saved as for
SIGTERM, and the terminal, which is gone, is no longer written to (fds 0-2 are pointed at
/dev/null: a write to a hung-up terminal fails with EIO, which would fail the ending itself).
A shell passes its hang-up on to its jobs and the kernel sends another when the shell exits, so a
repeated SIGHUP is the same event, never "stop at once". Ray starts its GCS, raylet and agents
in the driver's process group, which the shell's SIGHUP reaches too: they are started with
SIGHUP blocked (`hangup_blocked`), or they would die under a driver that is saving the search.

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

import contextlib
import os
import signal
import threading
from typing import Any, Callable, Iterator, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM, 129
    for SIGHUP)."""
    return 128 + signum


class Interrupted(KeyboardInterrupt):
    """A signal that stops a command at once (before Tune listens, or a second one), with the
    signal, for an exit code that says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def terminals() -> list[int]:
    """Which of stdin, stdout and stderr are a terminal (asked while it is there: a hung-up
    terminal no longer answers as one)."""
    found = []
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError, ValueError):
            if os.isatty(fd):
                found.append(fd)
    return found


def detach(fds: list[int]) -> None:
    """Point `fds` (a terminal that hung up) at /dev/null: what the command still prints (its
    ending, Ray's and MLflow's lines) is dropped instead of failing with EIO. launch.log keeps
    its copy of stderr."""
    if not fds:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            os.dup2(null, fd)
    finally:
        os.close(null)


@contextlib.contextmanager
def hangup_blocked() -> Iterator[None]:
    """SIGHUP blocked while processes are started: they inherit the mask (across exec) and never
    see a hang-up. A SIGHUP that comes meanwhile waits, and reaches this process after."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def on_signals(signals: tuple[int, ...] = SIGNALS) -> Callable[[], None]:
    """For a command without Tune (`retrain`, `ui`): each of `signals` raises Interrupted (a
    KeyboardInterrupt, which these commands handle as Ctrl+C), SIGHUP after detaching the
    terminal; a repeated SIGHUP is ignored. Returns what puts the old handlers back."""
    ttys = terminals()
    hung_up: list[bool] = []

    def handle(signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            detach(ttys)
            if hung_up:
                return
            hung_up.append(True)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handle) for s in signals}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def tune_listens() -> bool:
    """Whether Tune's graceful-stop handler is installed (it is only while `Tuner.fit` runs):
    SIGUSR1 before that would kill the process."""
    return signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)


class Interruption:
    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self.requested: Optional[str] = None  # why a stop was requested (`resnet-search stop`)
        self.hooks: list[Callable[[], None]] = []
        self.hung_up = False  # a SIGHUP came: the terminal is gone
        self._previous: dict[int, Any] = {}
        self._ttys: list[int] = []
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
        self._ttys = terminals()
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self.hung_up:  # the shell's second SIGHUP must not kill the ending that follows
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            detach(self._ttys)
            if self.hung_up:
                return  # the same hang-up again (the shell's, then the kernel's)
            self.hung_up = True
            if self.interrupted:
                return  # already saving: a closed terminal is no reason to stop at once
        first = not self.interrupted
        self.signal = self.signal or signum
        if not first or not tune_listens():
            raise Interrupted(signum)
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
