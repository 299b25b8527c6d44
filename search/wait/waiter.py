"""A wait that says what it waits for: `wait_until(look, what, ...)` looks again and again until
`rules.verdict` ends it, with a line through `note` at the start (or after `first_s`) and every
half minute. Clock and sleep are parameters, so its tests run on a fake clock.

    seen = wait_until(lambda: Look(ready=answers(), alive=proc.poll() is None),
                      "mlflow ui to answer on http://127.0.0.1:5000", note=print)
    if seen.verdict is Verdict.GONE: ...
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

from search.wait.rules import EVERY_S, Look, Verdict, load_text, say_due, verdict, waiting_line


def machine_load() -> str:
    """This machine's 1-minute load average and CPU count, as a waiting line shows it."""
    try:
        load: Optional[float] = os.getloadavg()[0]
    except OSError:  # not on every platform
        load = None
    return load_text(load, os.cpu_count())


@dataclass(frozen=True)
class Waited:
    verdict: Verdict
    elapsed_s: float
    look: Look  # the last one


def wait_until(look: Callable[[], Look], what: str, *,
               note: Callable[[str], None] = lambda text: None,
               limit_s: Optional[float] = None, first_s: float = 0.0, every_s: float = EVERY_S,
               poll_s: float = 0.5, local: bool = True,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> Waited:
    """Look until ready, gone or (with `limit_s`) too long. `local`: what is awaited runs on
    this machine, so its load is part of the waiting line."""
    start = clock()
    said_at: Optional[float] = None
    while True:
        seen = look()
        elapsed = clock() - start
        decided = verdict(seen, elapsed, limit_s)
        if decided is not Verdict.WAIT:
            return Waited(decided, elapsed, seen)
        if say_due(elapsed, said_at, first_s, every_s):
            said_at = elapsed
            note(waiting_line(what, elapsed, seen.detail, machine_load() if local else ""))
        sleep(poll_s)
