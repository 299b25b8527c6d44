"""Trial schedulers: the registry of `scheduler:` types, built on Ray Tune's own."""

from __future__ import annotations

from typing import Any, Callable

from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

# Epochs, not Tune iterations: after a restore Tune's iteration counter and our epoch can differ,
# and the rungs must be in the unit the budget is written in.
TIME_ATTR = "epoch"


class RecordingASHA(ASHAScheduler):
    """ASHA that remembers which trials it stopped, so an early stop by the scheduler can be
    told apart from one by the experiment (time limit, Ctrl+C) in Optuna and MLflow."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped: set[str] = set()

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and result.get(TIME_ATTR, 0) < self._max_t:
            self.stopped.add(trial.trial_id)
        return decision


class RecordingFIFO(FIFOScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.stopped: set[str] = set()  # always empty: FIFO never stops a trial


class KeepStopRecord(Callback):
    """Saves the scheduler's stop record with every experiment snapshot. Tune snapshots the
    searcher and the callbacks but not the scheduler, so after a driver crash the trials ASHA
    had stopped would read as killed. Holds the scheduler's own set (both travel in one
    tuner.pkl, so a restored tuner shares it too)."""

    def __init__(self, stopped: set[str]) -> None:
        self.stopped = stopped

    def get_state(self) -> dict:
        return {"stopped": sorted(self.stopped)}

    def set_state(self, state: dict) -> None:
        self.stopped.update(state.get("stopped", ()))


SCHEDULERS: dict[str, Callable[[Any, int], TrialScheduler]] = {
    "asha": lambda s, max_epochs: RecordingASHA(
        time_attr=TIME_ATTR, max_t=max_epochs, grace_period=s.grace_period,
        reduction_factor=s.reduction_factor, brackets=s.brackets),
    "fifo": lambda s, max_epochs: RecordingFIFO(),
}


def build_scheduler(scheduler_spec: Any, max_epochs: int) -> TrialScheduler:
    return SCHEDULERS[scheduler_spec.type](scheduler_spec, max_epochs)
