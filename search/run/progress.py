"""Live progress for `launch`: one line per trial event instead of Ray's periodic tables."""

from __future__ import annotations

from typing import Any, Callable

from ray.tune import Callback
from rich.console import Console
from rich.text import Text

from search.engine.trial_errors import error_reason
from search.experiment.outcome import Outcome, outcome_of

# Lines are built from plain text and styles, never markup: a config (milestones=[0.5, 0.75])
# or an error message may hold brackets. Styles render in a terminal and vanish in a pipe.
MARK = {Outcome.COMPLETED: ("done", "green"), Outcome.STOPPED: ("stopped by ASHA", "yellow"),
        Outcome.KILLED: ("killed", "magenta"), Outcome.DIVERGED: ("diverged", "red"),
        Outcome.OOM: ("out of memory", "red"), Outcome.INVALID: ("invalid config", "red"),
        Outcome.FAILED: ("failed", "red")}


def short(config: dict, limit: int = 6) -> str:
    items = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()]
    return " ".join(items[:limit]) + (" …" if len(items) > limit else "")


class ProgressPrinter(Callback):
    def __init__(self, metric: str, max_epochs: int, trials: int,
                 scheduler_stops: Callable[[str], bool], console: Console | None = None) -> None:
        self.metric, self.max_epochs, self.trials = metric, max_epochs, trials
        self.scheduler_stops = scheduler_stops
        self.console = console or Console(stderr=True)
        self.ended = 0
        self.last: dict[str, dict] = {}

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "console"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.console = Console(stderr=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(("start", "dim"), f" {trial.trial_id}  {short(trial.config)}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.last[trial.trial_id] = result

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, errored=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(("retry", "yellow"), f" {trial.trial_id} (failure {trial.num_failures}) from "
                  f"its last checkpoint: {error_reason(trial)}")

    def _ended(self, trial: Any, errored: bool) -> None:
        self.ended += 1
        last = self.last.get(trial.trial_id, {})
        epochs = int(last.get("epoch", 0))
        verdict = outcome_of(last, max_epochs=self.max_epochs, errored=errored,
                             stopped_by_scheduler=self.scheduler_stops(trial.trial_id))
        value = last.get(self.metric)
        shown = f"{self.metric}={value:.4f}" if isinstance(value, float) and verdict not in (
            Outcome.DIVERGED, Outcome.OOM, Outcome.INVALID) else (last.get("reason") or "")
        if errored:  # Ray's traceback stays in the trial's error.txt, not on the terminal
            shown = f"{error_reason(trial)} (traceback: {trial.path}/error.txt)"
        self._say(f"[{self.ended}/{self.trials}] {trial.trial_id} ", MARK[verdict],
                  f" after {epochs}/{self.max_epochs} epochs  {shown}")

    def _say(self, *parts: Any) -> None:
        self.console.print(Text.assemble(*parts), highlight=False)
