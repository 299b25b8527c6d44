"""Trial schedulers: the Ray Tune scheduler a `scheduler:` entry names (search.spec.schedulers),
built with what every launch needs of it, and its state kept in the experiment record so that
a resumed search decides exactly as an uninterrupted one would, where that state is known.

Every scheduler a launch runs is its Ray class with `Recording` mixed in: the ledger is told of
each trial the scheduler stops before its last epoch, whether by answering STOP to the trial's
own result or by stopping another trial through Tune's controller (HyperBand stops the trials
it paused and found wanting that way).

Ray snapshots the searcher and the callbacks with the experiment, but not the scheduler: a
restored ASHA starts with empty rungs, so every trial that resumes (or starts) after a restart
is compared against nothing and runs to its last epoch (measured: 6 trials, 15 trial-epochs
uninterrupted, 18 after one driver kill). For the Ray classes in `EXACT` the scheduler's whole
state is written as plain JSON at every experiment snapshot (`SchedulerRecord`) and loaded back
into the restored scheduler; any other starts its brackets anew on resume, and the record
keeps only which trials it stopped.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Optional

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from search.engine import compat
from search.engine.budget import BudgetedGenerator, hold_place
from search.engine.ledger import Ledger
from search.engine.moasha import MOASHA
from search.engine.promotion import PASHA, PromotionASHA
from search.spec.schedulers import SCHEDULERS, TIME_ATTR

if TYPE_CHECKING:
    from search.spec.schedulers import SchedulerEntry


class Recording:
    """Mixed into a Ray scheduler: tells the launch's ledger which trials it stopped early (an
    early stop by the scheduler is told apart from one by the experiment in Optuna and MLflow),
    and says its state for the record (by default: only those stops)."""

    def __init__(self, *, ledger: Ledger, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger = ledger
        self._epochs: dict[str, int] = {}  # trial id -> the last epoch the scheduler saw
        # Trials Ray restores as ended that run on (a raised max_epochs: search.experiment.
        # extend); set by a resumed launch, each taken once.
        self.continued: set[str] = set()

    def __setstate__(self, state: dict) -> None:
        # Pickled before these existed (0.2; before extensions).
        self.__dict__.update({"_epochs": {}, "continued": set(), **state})

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.run_on(tune_controller, trial)
        super().on_trial_add(tune_controller, trial)
        generator = getattr(tune_controller, "search_alg", None)
        if isinstance(generator, BudgetedGenerator):  # a restored search (search.engine.budget)
            generator.adopt(trial)

    def run_on(self, tune_controller: Any, trial: Any) -> None:
        """A trial Ray restores as ended that the launch continues: pending again before Tune
        files it by its status (Tune adds every restored trial through here), so that it starts
        from its last checkpoint, holding its place in the concurrency limit as a suggested
        trial does."""
        if trial.trial_id in self.continued and trial.status == Trial.TERMINATED:
            self.continued.discard(trial.trial_id)
            trial.set_status(Trial.PENDING)
            hold_place(getattr(tune_controller, "search_alg", None), trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._epochs[trial.trial_id] = int(result.get(TIME_ATTR, 0))
        decision = super().on_trial_result(_Telling(tune_controller, self), trial, result)
        if decision == TrialScheduler.STOP:
            self.note_stop(trial.trial_id)
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        super().on_trial_complete(_Telling(tune_controller, self), trial, result)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_error(_Telling(tune_controller, self), trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_remove(_Telling(tune_controller, self), trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Optional[Trial]:
        chosen = super().choose_trial_to_run(tune_controller)
        if chosen is None:
            self._stop_stranded(tune_controller)
        return chosen

    def _stop_stranded(self, tune_controller: Any) -> None:
        """Stop the trials this scheduler paused when nothing runs or waits and it chooses none
        of them: no result will come to change its mind, and Tune would wait for ever. Ray's
        HyperBand leaves a bracket's paused trials so when the bracket's last running trial
        ends itself (diverged) after the others paused at its last rung: its own clean-up,
        which stops them, runs only for a trial that reaches that rung."""
        trials = tune_controller.get_trials()
        if any(t.status in (Trial.RUNNING, Trial.PENDING) for t in trials):
            return
        for trial in [t for t in trials if t.status == Trial.PAUSED]:
            _Telling(tune_controller, self).stop_trial(trial)

    def note_stop(self, trial_id: str) -> None:
        # Stopped at its last epoch, a trial simply ended: only an earlier stop is the
        # scheduler's doing.
        if self._epochs.get(trial_id, 0) < self.ledger.max_epochs:
            self.ledger.stop(trial_id)

    def state(self) -> dict:
        return {"type": self.ledger.stop_tag, "stopped": sorted(self.ledger.stopped)}

    def load_state(self, state: dict) -> None:
        pass  # (its "stopped" list is the ledger's, which the launch loads from the record)


class _Telling:
    """Tune's controller as a scheduler sees it, telling the scheduler's ledger of every trial
    the scheduler stops through it before Tune does (Tune tells the searcher next, which has
    the ledger decide how the trial ended)."""

    def __init__(self, controller: Any, scheduler: Recording) -> None:
        while isinstance(controller, _Telling):  # a scheduler calling its own hooks
            controller = controller.controller
        self.controller, self.scheduler = controller, scheduler

    def stop_trial(self, trial: Any) -> None:
        self.scheduler.note_stop(trial.trial_id)
        self.controller.stop_trial(trial)
        # A trial stopped while paused: else Ray's snapshots keep it PAUSED (unfinished).
        compat.snapshot_trial(self.controller, trial)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.controller, name)


class RecordingASHA(Recording, ASHAScheduler):
    """ASHA whose whole state round-trips through plain JSON: every bracket's rungs, which
    bracket each trial is in, what it stopped."""

    def __init__(self, *, ledger: Ledger, **kwargs: Any) -> None:
        super().__init__(ledger=ledger, **kwargs)
        self._restored_brackets: dict[str, int] = {}

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        # A restored trial goes back to its bracket (an ended one to the bracket whose rungs
        # hold it); ASHA would draw one at random again.
        index = self._restored_brackets.pop(trial.trial_id, None)
        if index is None:
            index = self._recorded_in(trial.trial_id)
        if index is None:
            super().on_trial_add(tune_controller, trial)
        else:
            self.run_on(tune_controller, trial)
            compat.asha_assignment(self)[trial.trial_id] = compat.asha_brackets(self)[index]

    def _recorded_in(self, trial_id: str) -> Optional[int]:
        for index, bracket in enumerate(compat.asha_brackets(self)):
            if any(trial_id in recorded for _, recorded in compat.bracket_rungs(bracket)):
                return index
        return None

    def state(self) -> dict:
        brackets = compat.asha_brackets(self)
        return {
            **super().state(), "num_stopped": compat.asha_num_stopped(self),
            "rungs": [[[milestone, dict(recorded)] for milestone, recorded in
                       compat.bracket_rungs(bracket)] for bracket in brackets],
            "brackets": {trial_id: brackets.index(bracket)
                         for trial_id, bracket in compat.asha_assignment(self).items()},
        }

    def load_state(self, state: dict) -> None:
        """Every saved rung back into the rung at the same epoch. A larger max_epochs (an
        extended experiment) adds rungs above the saved ones and moves none (they lie at
        grace_period x reduction_factor^k): the new ones start empty."""
        brackets = compat.asha_brackets(self)
        saved = state.get("rungs", [])
        ours = [[m for m, _ in compat.bracket_rungs(b)] for b in brackets]
        theirs = [[m for m, _ in rungs] for rungs in saved]
        # The spec hash pins the scheduler's settings, and max_epochs only grows: a damaged
        # record.
        if len(theirs) != len(ours) or any(not set(t) <= set(o) for t, o in zip(theirs, ours)):
            raise ValueError(f"the saved ASHA state has rungs at epochs {theirs} but this "
                             f"scheduler has them at {ours}")
        for bracket, rungs in zip(brackets, saved):
            at = {milestone: recorded for milestone, recorded in compat.bracket_rungs(bracket)}
            for milestone, values in rungs:
                at[milestone].clear()
                at[milestone].update(values)
        self._restored_brackets = dict(state.get("brackets", {}))
        compat.set_asha_num_stopped(self, int(state.get("num_stopped", 0)))


class RecordingMOASHA(RecordingASHA, MOASHA):
    """MO-ASHA (search.engine.moasha), its state as ASHA's: rungs of score vectors."""


class RecordingFIFO(Recording, FIFOScheduler):
    """FIFO stops no trial: its ledger is never told of a stop, and it has no state."""


class RecordingPromotionASHA(Recording, PromotionASHA):
    """Promotion ASHA whose whole state round-trips through plain JSON: its rungs, who was
    promoted, who waits paused at which rung (search.engine.promotion)."""

    def state(self) -> dict:
        return {**super().state(), **self.promotion_state()}

    def load_state(self, state: dict) -> None:
        self.load_promotion_state(state)


class RecordingPASHA(Recording, PASHA):
    """PASHA, its state as promotion ASHA's plus its top rung, epsilon and curves."""

    def state(self) -> dict:
        return {**super().state(), **self.promotion_state()}

    def load_state(self, state: dict) -> None:
        self.load_promotion_state(state)


# The Ray classes whose state the engine saves exactly (all of it, or there is none), under the
# class names the tuner.pkl files of earlier versions know them by.
EXACT: dict[type, type] = {ASHAScheduler: RecordingASHA, FIFOScheduler: RecordingFIFO,
                           PromotionASHA: RecordingPromotionASHA, PASHA: RecordingPASHA,
                           MOASHA: RecordingMOASHA}


def ray_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    found = getattr(importlib.import_module(module), name)
    if not (isinstance(found, type) and issubclass(found, TrialScheduler)):
        raise TypeError(f"{path} is not a Ray Tune trial scheduler")
    return found


def recording(scheduler_class: type) -> type:
    """The class a launch builds for a Ray scheduler class: `Recording` mixed in."""
    if scheduler_class in EXACT:
        return EXACT[scheduler_class]
    name = f"Recording{scheduler_class.__name__}"
    made = globals().get(name)
    if made is None:
        # A module attribute, so that Ray's pickle of a tuner names it like any other class.
        made = globals()[name] = type(name, (Recording, scheduler_class), {
            "__module__": __name__, "__doc__": f"{scheduler_class.__name__}, recording."})
    return made


# Made as the module loads, for every entry of the registry: a tuner.pkl refers to its
# scheduler's class by name, and a resumed launch must find it before it builds anything.
for _entry in SCHEDULERS.values():
    for _path in {_entry.ray_class, _entry.several_ray_class} - {None}:
        recording(ray_class(_path))


def build_scheduler(section: SchedulerEntry, max_epochs: int, ledger: Ledger,
                    objectives: tuple = ()) -> TrialScheduler:
    """The scheduler of a `scheduler:` section, as a launch and a replay run it; `objectives`:
    (metric, mode) of each when there are several (search.spec.job.TrialJob.objectives)."""
    made = recording(ray_class(section.ray_class_for(objectives)))
    return made(ledger=ledger, **section.ray_kwargs(max_epochs),
                **section.objective_kwargs(objectives))


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
