"""Live progress for `launch`: a line per trial event instead of Ray's periodic tables, and where
the search stands (budget used, trials, best, elapsed, ETA).

On a terminal the standing is a footer under the scrolling lines; in a pipe or a log it is a
plain status line now and then (search/run/screen.py). Every line starts with the time. A trial
whose epochs are long also prints a line per epoch, and none is silent for long
(search/run/standing.py has the rules).

A resumed launch keeps counting: the trials Ray restored come with their last results, so the
budget used, the ended trials and the best so far include the earlier launches' work. Nothing
of that is pickled with the tuner; the rate behind the ETA is this launch's own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ray.tune import Callback
from rich.console import Console, RenderableType
from rich.text import Text

from search.engine.ledger import Ledger
from search.engine.trial_errors import error_reason
from search.experiment.summary import eta
from search.run import standing
from search.run.fullstorage import no_space
from search.run.runtime import ray_up
from search.run.screen import LiveFooter, Plain, screen_for
from search.spec import objective
from search.spec.schedulers import DEFAULT, LEGACY
from search.wait.waiter import machine_load
from search.spec.outcome import Outcome

# Lines are built from plain text and styles, never markup: a config (milestones=[0.5, 0.75])
# or an error message may hold brackets. Styles render in a terminal and vanish in a pipe.
MARK = {Outcome.COMPLETED: ("done", "green"), Outcome.STOPPED: ("stopped by {label}", "yellow"),
        Outcome.KILLED: ("killed", "magenta"), Outcome.DIVERGED: ("diverged", "red"),
        Outcome.OOM: ("out of memory", "red"), Outcome.INVALID: ("invalid config", "red"),
        Outcome.FAILED: ("failed", "red")}
# Which count of the standing an ended trial goes into (as `status` counts them).
COUNT = {Outcome.COMPLETED: "done", Outcome.STOPPED: "stopped", Outcome.KILLED: "killed"}
ENDED = ("TERMINATED", "ERROR")  # Ray's statuses of a trial that will not run again


def short(config: dict, limit: int = 6) -> str:
    items = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()]
    return " ".join(items[:limit]) + (" …" if len(items) > limit else "")


def per_epoch(seconds: float) -> str:
    return f"{seconds:.0f} s/epoch" if seconds >= 10 else f"{seconds:.1f} s/epoch"


@dataclass(frozen=True)
class Ran:
    """What `eta` reads of a trial (search/experiment/summary.py: Spent)."""

    epochs: int


class ProgressPrinter(Callback):
    """A Tune callback. Tune calls `setup` when the search starts and `on_experiment_end` when it
    ends; the driver calls `close` as well, for the ending Tune never sees (a second Ctrl+C)."""

    def __init__(self, metric: str, max_epochs: int, trials: int, ledger: Ledger,
                 console: Optional[Console] = None, *, mode: Optional[str] = None,
                 stop_label: str = DEFAULT.label, clock: Callable[[], float] = time.time,
                 objectives: tuple = (), constraints: tuple = ()) -> None:
        self.metric, self.max_epochs, self.trials = metric, max_epochs, trials
        # several objectives ((metric, mode) each) and constraints: the front's size is shown
        self.objectives, self.constraints = tuple(objectives), tuple(constraints)
        self.mode = mode or objective.natural_mode(metric)
        self.ledger = ledger  # how each trial ended (search.engine.ledger)
        self.stop_label = stop_label  # who stops trials early, as people call it
        self._fresh(console, clock)

    def _fresh(self, console: Optional[Console], clock: Callable[[], float]) -> None:
        """What one launch keeps while it runs; a restored printer starts it anew."""
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.clock = clock
        self.screen: Plain | LiveFooter | None = None
        self.started_at: Optional[float] = None
        self.first_start: Optional[float] = None  # of a trial in this launch: the ETA's rate
        self.closed = False
        self.adopted = False  # the trials of earlier launches have been counted
        self.epochs: dict[str, int] = {}  # trial id -> last epoch reported
        self.best: dict[str, float] = {}  # trial id -> its best finite objective
        self.outcomes: dict[str, Outcome] = {}  # ended trials
        self.running: dict[str, None] = {}  # running trial ids, in the order they started
        self.paused: set[str] = set()  # of those, the ones a scheduler has paused
        self.spoke: dict[str, float] = {}  # trial id -> when its last line was printed
        self.epochs_now = 0  # epochs reported in this launch: the rate behind the ETA
        self.status_at: Optional[float] = None  # when the last status line was printed
        self.standing: Optional[standing.Standing] = None
        # What shows a starved search as slow, not silent (between Tune's events: `_tick`).
        self.epoch_at: dict[str, float] = {}  # trial id -> when its last epoch came (or start)
        self.epoch_s: dict[str, float] = {}  # trial id -> how long its last epoch took
        self.ticked_at = 0.0
        self.waiting_said: Optional[float] = None  # since setup, when it last said it waits
        self.ray_up: Optional[tuple[float, bool]] = None  # runtime.ray_up(), read at setup
        self.load: Callable[[], str] = machine_load  # this machine's load, for a local Ray

    # The tuner is pickled with its callbacks, and restored by a resumed launch: only what was
    # configured travels (a console cannot be pickled; the counts come back from Ray's trials).
    _CONFIG = ("metric", "mode", "max_epochs", "trials", "ledger", "stop_label", "objectives",
               "constraints")

    def __getstate__(self) -> dict:
        return {k: self.__dict__[k] for k in self._CONFIG}

    def __setstate__(self, state: dict) -> None:
        state.pop("scheduler_stops", None)  # resnet-search 0.2: the ledger decides now
        self.__dict__.update({"ledger": None, "stop_label": LEGACY.label, "objectives": (),
                              "constraints": (), **state})
        if "mode" not in state:  # pickled by an earlier version
            self.mode = objective.natural_mode(self.metric)
        self._fresh(None, time.time)

    # --- Tune's events ---
    def setup(self, **info: Any) -> None:
        self._begin()

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        # Tune steps several times a second whatever the trials do: the printer's clock tick.
        self._adopt(trials)
        # A scheduler may pause a trial (HyperBand, at a rung until its bracket is compared):
        # it has not ended, and it does not run. Tune says so only through its status.
        paused = {t.trial_id for t in trials if t.status == "PAUSED"}
        if paused != self.paused:
            self.paused = paused
            self._snapshot()
        self._tick()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._adopt(trials)
        self.running[trial.trial_id] = None
        self.paused.discard(trial.trial_id)
        self.spoke[trial.trial_id] = self.epoch_at[trial.trial_id] = self.clock()
        if self.first_start is None:  # Ray's start-up is no part of the rate of training
            self.first_start = self.spoke[trial.trial_id]
        done = self.epochs.get(trial.trial_id, 0)
        if done:  # paused, interrupted or failed before: it goes on from its checkpoint
            self._say(("resume", "dim"), f" {trial.trial_id} after epoch {done}")
        else:
            self._say(("start", "dim"), f" {trial.trial_id}  {short(trial.config)}")
        self._update()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self._adopt(trials)
        trial_id, now = trial.trial_id, self.clock()
        epoch = int(result.get("epoch", 0))
        self.epochs_now += max(0, epoch - self.epochs.get(trial_id, 0))  # a retry re-reports
        self.epochs[trial_id] = max(epoch, self.epochs.get(trial_id, 0))
        found = objective.best([self.best.get(trial_id), result.get(self.metric)], self.mode)
        if found is not None:
            self.best[trial_id] = found
        took = result.get("time_this_iter_s")
        took = float(took) if objective.finite(took) else now - self.spoke.get(trial_id, now)
        self.epoch_at[trial_id], self.epoch_s[trial_id] = now, took
        # The last epoch and a trial's own ending (diverged, out of memory) get an end line.
        if epoch < self.max_epochs and "outcome" not in result and standing.epoch_line_due(
                took, now - self.spoke.get(trial_id, now)):
            self.spoke[trial_id] = now
            self._say(f"{trial_id} epoch {epoch}/{self.max_epochs} "
                      f"{self.metric}={standing.value(result.get(self.metric))} "
                      f"(best {standing.value(self.best.get(trial_id))}) {per_epoch(took)}")
        self._update()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, trials, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, trials, errored=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if no_space(error_reason(trial)):
            return  # not retried for real: the search stops, and its last line says why
        self._say(("retry", "yellow"), f" {trial.trial_id} (failure {trial.num_failures}) from "
                  f"its last checkpoint: {error_reason(trial)}")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.close()

    def close(self) -> None:
        """The footer goes and one line of where the search ended stays. Idempotent."""
        if self.closed or self.screen is None:
            return
        self.closed = True
        try:
            self.screen.close()
        finally:
            self._snapshot()
            assert self.standing is not None
            self._say(("launch ended", "bold"),
                      f": {standing.status_line(self.standing, self.clock(), final=True)}")

    # --- between events: a starved search shows as slow, not silent ---
    def _tick(self) -> None:
        """At most once a second: before this launch's first trial starts, say every 30 s that
        the search waits for it; a running trial that has reported nothing for a while (by its
        own pace) says so, with how long and, on a local Ray, the machine's load."""
        now = self.clock()
        if self.screen is None or self.closed or now - self.ticked_at < 1.0:
            return
        self.ticked_at = now
        assert self.started_at is not None
        local = self.ray_up is None or self.ray_up[1]
        if self.first_start is None:
            waited = now - self.started_at
            if standing.first_trial_due(waited, self.waiting_said):
                self.waiting_said = waited
                up = None if self.ray_up is None else now - self.ray_up[0]
                self._say((standing.first_trial_text(up, local, self.load() if local else ""),
                           "dim"))
            return
        for trial_id in [t for t in self.running if t not in self.paused]:  # paused: by design
            since_epoch = now - self.epoch_at.get(trial_id, now)
            if standing.silent_due(since_epoch, now - self.spoke.get(trial_id, now),
                                   self.epoch_s.get(trial_id)):
                self.spoke[trial_id] = now
                self._say((standing.silent_text(
                    trial_id, since_epoch, self.epochs.get(trial_id, 0), self.max_epochs,
                    self.load() if local else ""), "yellow"))

    # --- what the events change ---
    def _begin(self) -> None:
        if self.screen is not None:
            return
        self.started_at = self.clock()
        if self.ray_up is None:
            self.ray_up = ray_up()  # the launch's Ray, when it came up
        self._snapshot()
        self.screen = screen_for(self.console, self._footer)
        if isinstance(self.screen, LiveFooter):
            self.screen.start()

    def _adopt(self, trials: list) -> None:
        """Count what the trials of earlier launches did (a resumed search), once."""
        self._begin()
        if self.adopted:
            return
        self.adopted = True
        for trial in trials:
            if trial.status == "RUNNING":  # its result may still be on its way: not asked
                continue
            last = trial.last_result or {}
            self.epochs[trial.trial_id] = int(last.get("epoch", 0))
            found = (getattr(trial, "metric_analysis", None) or {}).get(self.metric, {})
            if objective.finite(found.get(self.mode)):
                self.best[trial.trial_id] = float(found[self.mode])
            if trial.status in ENDED:
                self.outcomes[trial.trial_id] = self.ledger.end(
                    trial.trial_id, errored=trial.status == "ERROR", last=last).outcome
        self._update()

    def _ended(self, trial: Any, trials: list, errored: bool) -> None:
        self._adopt(trials)
        trial_id = trial.trial_id
        end = self.ledger.end(trial_id, errored=errored,
                              last=self.ledger.last.get(trial_id) or trial.last_result,
                              reason=lambda: error_reason(trial))
        self.outcomes[trial_id] = end.outcome
        self.running.pop(trial_id, None)
        value = end.last.get(self.metric)
        shown = f"{self.metric}={value:.4f}" if isinstance(value, float) and end.outcome not in (
            Outcome.DIVERGED, Outcome.OOM, Outcome.INVALID) else end.reason
        if errored:  # Ray's traceback stays in the trial's error.txt, not on the terminal
            shown = f"{end.reason} (traceback: {trial.path}/error.txt)"
        mark, style = MARK[end.outcome]
        self._say(f"[{len(self.outcomes)}/{self.trials}] {trial_id} ",
                  (mark.format(label=self.stop_label), style),
                  f" after {end.epochs}/{self.max_epochs} epochs  {shown}")
        self._update(trial_ended=True)

    def _update(self, trial_ended: bool = False) -> None:
        """A new snapshot for the footer, and a status line when one is due."""
        self._snapshot()
        if self.screen is None or self.closed:
            return
        now = self.clock()
        since = None if self.status_at is None else now - self.status_at
        if standing.status_due(since, trial_ended):
            self.status_at = now
            assert self.standing is not None
            self.screen.note(self._stamped(
                ("status", "bold"), f": {standing.status_line(self.standing, now)}"))

    def _snapshot(self) -> None:
        now = self.clock()
        started = self.started_at if self.started_at is not None else now
        kinds = [COUNT.get(outcome, "failed") for outcome in self.outcomes.values()]
        best = min(self.best.items(), key=lambda item: objective.rank_key(item[1], self.mode),
                   default=None)
        self.standing = standing.Standing(
            metric=self.metric, max_epochs=self.max_epochs,
            epochs_used=sum(self.epochs.values()), epochs_budget=self.trials * self.max_epochs,
            running=tuple((t, self.epochs.get(t, 0)) for t in self.running
                          if t not in self.paused),
            paused=len(self.paused & self.running.keys()),
            done=kinds.count("done"), stopped=kinds.count("stopped"),
            killed=kinds.count("killed"), failed=kinds.count("failed"),
            to_start=max(0, self.trials - len(self.outcomes) - len(self.running)),
            best=best,
            eta_s=eta(self.epochs_now, now - (self.first_start or now),
                      [Ran(self.epochs.get(t, 0)) for t in self.outcomes],
                      [Ran(self.epochs.get(t, 0)) for t in self.running],
                      self.trials - len(self.outcomes), self.max_epochs),
            started_at=started, at=now, stop_label=self.stop_label,
            front=(len(self.ledger.front(self.objectives, self.constraints))
                   if self.objectives and self.ledger is not None else None))

    # --- output ---
    def _footer(self) -> RenderableType:
        # Rich's refresh thread: it reads one snapshot, which Tune's thread only ever replaces.
        return standing.footer(self.standing, self.clock()) if self.standing else ""

    def _stamped(self, *parts: Any) -> Text:
        return Text.assemble((time.strftime("%H:%M:%S", time.localtime(self.clock())), "dim"),
                             " ", *parts)

    def _say(self, *parts: Any) -> None:
        self._begin()
        self._snapshot()  # the footer drawn under this line shows what the line says
        assert self.screen is not None
        self.screen.line(self._stamped(*parts))
