"""Ctrl+C and SIGTERM end a search as `interrupted`: Tune saves its state, the launch records
the ending and exits 130 (143 for SIGTERM), never 0.

Ray Tune catches SIGINT itself during `Tuner.fit`: it saves the experiment, stops the trials and
*returns* as if the search had finished, then logs its own "Tuner.restore(...)" hint. So Tune's
SIGINT handler is turned off (TUNE_DISABLE_SIGINT_HANDLER) and ours takes both signals: it notes
which one came, runs the launch's hooks (the MLflow mirror learns why its runs end) and hands over
to the graceful stop Tune keeps on SIGUSR1. Before Tune has installed that (start-up), and at a
second signal, it raises KeyboardInterrupt: Tune snapshots at every epoch, so nothing is lost.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class Interruption:
    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self.hooks: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    def __enter__(self) -> Interruption:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signal is None
        self.signal = self.signal or signum
        tune_listens = signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN,
                                                                None)
        if not first or not tune_listens:
            raise KeyboardInterrupt
        for hook in self.hooks:
            hook()
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune: snapshot, stop the trials, return
