"""Trial schedulers: the registry of `scheduler:` types, built on Ray Tune's own, with their
state kept in the experiment record so that a resumed search decides exactly as an
uninterrupted one would.

Ray snapshots the searcher and the callbacks with the experiment, but not the scheduler: a
restored ASHA starts with empty rungs, so every trial that resumes (or starts) after a restart
is compared against nothing and runs to its last epoch (measured: 6 trials, 15 trial-epochs
uninterrupted, 18 after one driver kill). Here the scheduler's state is written as plain JSON at
every experiment snapshot (`SchedulerRecord`) and loaded back into the restored scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from search.engine import compat
from search.engine.ledger import Ledger

if TYPE_CHECKING:
    from search.spec.model import Scheduler

# Epochs, not Tune iterations: after a restore Tune's iteration counter and our epoch can differ,
# and the rungs must be in the unit the budget is written in.
TIME_ATTR = "epoch"


class RecordingASHA(ASHAScheduler):
    """ASHA that tells the launch's ledger which trials it stopped (an early stop by the
    scheduler is told apart from one by the experiment in Optuna and MLflow), and whose whole
    state round-trips through plain JSON: every bracket's rungs, which bracket each trial is
    in, what it stopped."""

    def __init__(self, *, ledger: Ledger, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger = ledger
        self._restored_brackets: dict[str, int] = {}

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        # A restored trial goes back to its bracket; ASHA would draw one at random again.
        index = self._restored_brackets.pop(trial.trial_id, None)
        if index is None:
            super().on_trial_add(tune_controller, trial)
        else:
            compat.asha_assignment(self)[trial.trial_id] = compat.asha_brackets(self)[index]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and result.get(TIME_ATTR, 0) < compat.asha_max_t(self):
            self.ledger.stop(trial.trial_id)
        return decision

    def state(self) -> dict:
        brackets = compat.asha_brackets(self)
        return {
            "type": "asha", "stopped": sorted(self.ledger.stopped),
            "num_stopped": compat.asha_num_stopped(self),
            "rungs": [[[milestone, dict(recorded)] for milestone, recorded in
                       compat.bracket_rungs(bracket)] for bracket in brackets],
            "brackets": {trial_id: brackets.index(bracket)
                         for trial_id, bracket in compat.asha_assignment(self).items()},
        }

    def load_state(self, state: dict) -> None:
        brackets = compat.asha_brackets(self)
        saved = state.get("rungs", [])
        ours = [[m for m, _ in compat.bracket_rungs(b)] for b in brackets]
        theirs = [[m for m, _ in rungs] for rungs in saved]
        if theirs != ours:  # the spec hash pins the scheduler's settings: a damaged record
            raise ValueError(f"the saved ASHA state has rungs at epochs {theirs} but this "
                             f"scheduler has them at {ours}")
        for bracket, rungs in zip(brackets, saved):
            for (_, recorded), (_, values) in zip(compat.bracket_rungs(bracket), rungs):
                recorded.clear()
                recorded.update(values)
        self._restored_brackets = dict(state.get("brackets", {}))
        # (Its "stopped" list is the ledger's, which the launch loads from the record.)
        compat.set_asha_num_stopped(self, int(state.get("num_stopped", 0)))


class RecordingFIFO(FIFOScheduler):
    def __init__(self, *, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger  # never told of a stop: FIFO stops no trial

    def state(self) -> dict:
        return {"type": "fifo", "stopped": []}

    def load_state(self, state: dict) -> None:
        pass


class SchedulerRecord(Callback):
    """Writes the scheduler's state with every experiment snapshot Tune takes (Tune calls
    `get_state` of each callback when it snapshots), through `save`, which the launch sets to
    the experiment record's writer. It holds the scheduler itself: both travel in one tuner.pkl,
    so a restored tuner's record and scheduler are the same objects again. `save` is not
    pickled (the launch sets it again after a restore)."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.save: Optional[Callable[[dict], None]] = None

    def __getstate__(self) -> dict:
        return {"scheduler": self.scheduler}

    def __setstate__(self, state: dict) -> None:
        self.scheduler, self.save = state["scheduler"], None

    def get_state(self) -> Optional[dict]:
        if self.save is not None:
            self.save(self.scheduler.state())
        return None  # nothing for Tune's pickle: the record holds it, as plain JSON

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Tune's last snapshot can come before the scheduler's last decisions: without this
        # the record would not know that the search's final trials were stopped by it.
        self.get_state()


SCHEDULERS: dict[str, Callable[[Any, int, Ledger], TrialScheduler]] = {
    "asha": lambda s, max_epochs, ledger: RecordingASHA(
        ledger=ledger, time_attr=TIME_ATTR, max_t=max_epochs, grace_period=s.grace_period,
        reduction_factor=s.reduction_factor, brackets=s.brackets),
    "fifo": lambda s, max_epochs, ledger: RecordingFIFO(ledger=ledger),
}


def build_scheduler(scheduler_spec: Scheduler, max_epochs: int, ledger: Ledger) -> TrialScheduler:
    return SCHEDULERS[scheduler_spec.type](scheduler_spec, max_epochs, ledger)
