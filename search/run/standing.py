"""Where a running search stands, as `launch` shows it, and when a launch says so.

    standing = Standing(...)           # a snapshot, taken on Tune's thread at each event
    status_line(standing, now)         # 'budget used: 37/96 trial-epochs (39%) · trials: ...'
    footer(standing, now)              # the same, as the live footer under a terminal's lines
    epoch_line_due(41.0, 41.0)         # print this epoch's line? (a long trial's heartbeat)
    status_due(35.0, trial_ended=False)
    silent_due(75.0, 75.0, epoch_s=2.0)  # a running trial that reports nothing says so
    first_trial_due(45.0, said_at=None)  # before the first trial, the search says it waits

Pure: no Ray, no console, no clock of its own (`now` is passed in), so every rule has a table
test and the footer renders on rich's refresh thread from a snapshot nobody mutates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from search.spec.schedulers import DEFAULT
from search.wait.rules import duration, say_due

# An epoch at least this long is news on its own: a CIFAR trial prints a line per epoch, while
# digits' one-second epochs print none (the footer and the trial's end line say enough).
LONG_EPOCH_S = 20.0
# ...and no trial goes longer than this without a line, whatever its epochs take: a log (a pipe,
# CI, `logs --follow`) has no footer, and a silent minute there reads as a hang.
QUIET_S = 60.0
# A plain status line (budget, trials, best, ETA) comes at most this often; the first one as
# soon as a trial has ended (from then on there is an ETA).
STATUS_EVERY_S = 30.0
# A search whose first trial has not started after this long says what it waits for, and again
# this often: on a loaded machine a trial's process takes minutes to start (Ray runs trials below
# normal priority on a cluster), and a launch that prints nothing then reads as a hang.
FIRST_TRIAL_EVERY_S = 30.0


@dataclass(frozen=True)
class Standing:
    metric: str
    max_epochs: int
    epochs_used: int  # trial-epochs reported, earlier launches of a resumed search included
    epochs_budget: int  # trials x max_epochs: every trial to its last epoch, none stopped early
    running: tuple[tuple[str, int], ...]  # (trial id, epochs done) of each running trial
    done: int  # ran every epoch
    stopped: int  # stopped early by the scheduler
    killed: int  # ended early by the experiment (a time limit, an interruption)
    failed: int  # failed, diverged, out of memory, invalid config
    to_start: int  # of the budget's trials, neither running nor ended
    best: Optional[tuple[str, float]]  # (trial id, value) of the best finite objective so far
    eta_s: Optional[float]  # seconds left as estimated at `at`; None until a trial has ended
    started_at: float  # when this launch's search began (wall clock)
    at: float  # when this snapshot was taken
    stop_label: str = DEFAULT.label  # who stops trials early, as people call it
    paused: int = 0  # paused by the scheduler: neither running nor ended
    front: Optional[int] = None  # several objectives: the trials on the Pareto front so far


def clock(seconds: float) -> str:
    """H:MM:SS, as rich's progress columns write a duration."""
    whole = max(0, int(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def value(number: Optional[float]) -> str:
    return f"{number:.4f}" if isinstance(number, float) else str(number)


def budget_text(s: Standing) -> str:
    share = 100 * s.epochs_used / s.epochs_budget if s.epochs_budget else 0.0
    return f"budget used: {s.epochs_used}/{s.epochs_budget} trial-epochs ({share:.0f}%)"


def trials_text(s: Standing, final: bool = False) -> str:
    # A trial still running when the launch ends (an interruption) resumes with the next one.
    stopped = f"stopped by {s.stop_label}"
    counts = ({"unfinished": len(s.running) + s.paused} if final else
              {"running": len(s.running), "paused": s.paused})
    counts |= {"done": s.done, stopped: s.stopped, "killed": s.killed, "failed": s.failed,
               "to start": s.to_start}
    # The usual ones always (a reader looks for them), the rare ones only when they happen;
    # once the launch has ended, nothing runs and what is left to start is not news.
    always = {"done", stopped, "failed"} | (set() if final else {"running", "to start"})
    return "trials: " + " · ".join(f"{n} {what}" for what, n in counts.items()
                                   if n or what in always)


def best_text(s: Standing) -> str:
    front = "" if s.front is None else f" · Pareto front: {s.front} trials"
    if s.best is None:
        return "best: none yet" + front
    trial_id, number = s.best
    return f"best: {s.metric}={value(number)} ({trial_id})" + front


def eta_left(s: Standing, now: float) -> Optional[float]:
    """The snapshot's estimate, counted down since it was made (events can be a minute apart)."""
    return None if s.eta_s is None else max(0.0, s.eta_s - (now - s.at))


def eta_text(s: Standing, now: float) -> str:
    left = eta_left(s, now)
    # The estimate assumes the trials to come spend what the ended ones spent on average
    # (search/experiment/summary.py: eta), which is what a scheduler's early stops make honest.
    return "ETA once a trial has ended" if left is None else f"ETA ~{clock(left)}"


def status_line(s: Standing, now: float, final: bool = False) -> str:
    """One plain line: the periodic status of a log, or (final) what the launch ends with."""
    parts = [budget_text(s), trials_text(s, final), best_text(s),
             f"elapsed {clock(now - s.started_at)}"]
    if not final:
        parts.append(eta_text(s, now))
    return " · ".join(parts)


def running_text(s: Standing, limit: int = 8) -> str:
    shown = [f"{trial_id} epoch {epochs}/{s.max_epochs}" for trial_id, epochs in s.running]
    more = f" · +{len(shown) - limit} more" if len(shown) > limit else ""
    return "running: " + (" · ".join(shown[:limit]) + more if shown else "none")


def footer(s: Standing, now: float) -> RenderableType:
    """The live footer: a bar of the budget used, then one line per concern. Lines never wrap
    (a wrapped footer would push up the lines above it at every refresh)."""
    top = Table.grid(padding=(0, 1))
    top.add_row(ProgressBar(total=max(1, s.epochs_budget), completed=s.epochs_used, width=24),
                Text(f"{budget_text(s)} · elapsed {clock(now - s.started_at)} · "
                     f"{eta_text(s, now)}", no_wrap=True, overflow="ellipsis"))
    return Group(top, *(Text(line, style=style, no_wrap=True, overflow="ellipsis")
                        for line, style in ((trials_text(s), ""), (best_text(s), ""),
                                            (running_text(s), "dim"))))


def epoch_line_due(epoch_s: float, quiet_s: float) -> bool:
    """Whether a trial's epoch gets a line of its own: when its epochs are long (each one is
    news), or when the trial has been silent for QUIET_S (a line at most that often for
    mid-length epochs, so no trial is silent for its whole run). `epoch_s`: how long this epoch
    took; `quiet_s`: since the trial's last line (its start or its last epoch line)."""
    return epoch_s >= LONG_EPOCH_S or quiet_s >= QUIET_S


def status_due(since_status_s: Optional[float], trial_ended: bool) -> bool:
    """Whether a plain status line is due now. `since_status_s`: since the last one (None:
    none yet; the first comes when a trial ends, the first moment there is an ETA)."""
    if since_status_s is None:
        return trial_ended
    return since_status_s >= STATUS_EVERY_S


def silent_due(since_epoch_s: float, since_line_s: float, epoch_s: Optional[float]) -> bool:
    """Whether a running trial that has reported no epoch for a while gets a line saying so: a
    starved search shows as slow, not silent. Due once the trial has gone QUIET_S without a line
    and twice its last epoch's time without an epoch (its own pace: a trial of 90-s epochs is
    not news at 60 s), then every QUIET_S. `since_epoch_s`: since its last epoch (or its start);
    `since_line_s`: since its last line; `epoch_s`: its last epoch's duration, None before one."""
    return since_line_s >= QUIET_S and since_epoch_s >= max(QUIET_S, 2 * (epoch_s or 0.0))


def silent_text(trial_id: str, since_epoch_s: float, epochs: int, max_epochs: int,
                load: str = "") -> str:
    """'t003 running 2 min without an epoch (load 9.1 on 2 CPUs)', or '... without an epoch
    since epoch 3/30 (...)'."""
    since = f" since epoch {epochs}/{max_epochs}" if epochs else ""
    return (f"{trial_id} running {duration(since_epoch_s)} without an epoch{since}"
            + (f" ({load})" if load else ""))


def first_trial_due(waited_s: float, said_at: Optional[float]) -> bool:
    """Whether the search, no trial of which has started yet in this launch, says it waits:
    after FIRST_TRIAL_EVERY_S, then every FIRST_TRIAL_EVERY_S. `waited_s`: since the search
    began; `said_at`: `waited_s` when it last said so, None before."""
    return say_due(waited_s, said_at, first_s=FIRST_TRIAL_EVERY_S, every_s=FIRST_TRIAL_EVERY_S)


def first_trial_text(ray_up_s: Optional[float], local: bool, load: str = "") -> str:
    """'waiting for the first trial to start (Ray started 1 min 30 s ago; load 9.1 on 2 CPUs)'.
    `ray_up_s`: since this launch started its Ray (local) or joined the cluster."""
    said = []
    if ray_up_s is not None:
        said.append(f"Ray started {duration(ray_up_s)} ago" if local
                    else f"joined the cluster {duration(ray_up_s)} ago")
    if load:
        said.append(load)
    return "waiting for the first trial to start" + (f" ({'; '.join(said)})" if said else "")
