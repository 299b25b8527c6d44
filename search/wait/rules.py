"""When a wait goes on, when it gives up, and what it says meanwhile. Pure: no clock, no I/O,
so every rule has a table test (tests/search/wait/test_rules.py).

A loaded machine makes every local step slower, never wrong: a process that is alive, a head
that answers, a node Ray still counts as alive are making progress, however slowly, and a fixed
deadline on them only turns slowness into a failure. So a wait on something that shows progress
has no deadline of its own (`limit_s=None`): it ends when the thing is ready, or at once when it
stops showing progress (the process exited, the node died). A limit is kept only where the
answer comes from elsewhere and silence may be a hang (a cluster node's storage over NFS, a
remote head whose job agent never comes up); its message names what was slow and how to retry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

# A line saying what is awaited at the start of a long wait (or after `first_s`), then this often.
EVERY_S = 30.0


class Verdict(enum.Enum):
    READY = "ready"  # what was awaited is there
    WAIT = "wait"  # not yet, and it still shows progress: look again
    GONE = "gone"  # it stopped showing progress (its process exited, its node died)
    TOO_LONG = "too long"  # an answer from elsewhere that did not come within its limit


@dataclass(frozen=True)
class Look:
    """One look at what is awaited."""

    ready: bool
    alive: bool = True  # it still shows progress: its process lives, the head answers, ...
    detail: str = ""  # what was seen, for the waiting line ("the head answers; its agent is ...")


def verdict(look: Look, elapsed_s: float, limit_s: Optional[float]) -> Verdict:
    """Go on waiting or stop, and why. `limit_s` None: no deadline (local progress)."""
    if look.ready:
        return Verdict.READY
    if not look.alive:
        return Verdict.GONE
    if limit_s is not None and elapsed_s >= limit_s:
        return Verdict.TOO_LONG
    return Verdict.WAIT


def say_due(elapsed_s: float, said_at: Optional[float], first_s: float = 0.0,
            every_s: float = EVERY_S) -> bool:
    """Whether a waiting line is due: the first once the wait has lasted `first_s` (0: at its
    start; a wait that is usually short says nothing until it is not), then every `every_s`.
    `said_at`: the elapsed time of the last line, None before the first."""
    if said_at is None:
        return elapsed_s >= first_s
    return elapsed_s - said_at >= every_s


def duration(seconds: float) -> str:
    """'0 s', '45 s', '1 min 30 s', '12 min', '2 h 05 min', as a person says how long."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    if whole < 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def load_text(load: Optional[float], cpus: Optional[int]) -> str:
    """'load 9.1 on 2 CPUs' (the 1-minute load average), or '' when unknown."""
    if load is None or not cpus:
        return ""
    return f"load {load:.1f} on {cpus} CPU{'s' if cpus != 1 else ''}"


def waiting_line(what: str, elapsed_s: float, detail: str = "", load: str = "") -> str:
    """'waiting for the head's job agent (2 min so far; the head answers ...; load 9.1 on 2
    CPUs)'."""
    said = [f"{duration(elapsed_s)} so far" if elapsed_s >= 1 else "", detail, load]
    inside = "; ".join(part for part in said if part)
    return f"waiting for {what}" + (f" ({inside})" if inside else "")
