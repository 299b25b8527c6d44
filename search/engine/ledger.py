"""How every trial of a launch ended, decided in one place, with every result the driver saw.

Ray Tune tells each party of a search about a trial's results and its end, in its own order
(the scheduler first, then the searcher, then the callbacks), and each used to keep its own last
result and work out the trial's outcome: four places that could disagree. The ledger is the one
place, as Syne Tune's `Tuner` keeps one `last_seen_result_per_trial` and one
`trials_scheduler_stopped` and hands its decision to every callback:

- it is the first of the launch's Tune callbacks, so it has seen a result before any other
  callback reads it, and it hands each result to the record's journal (the driver's own copy of
  every epoch, which a lost node or a lagging upload cannot take away);
- the scheduler tells it the trials it stopped early (`stop`);
- a trial's end is decided once (`end`: outcome, epochs, reason), by the first party Tune tells
  that the trial ended (the searcher is told before the callbacks); everyone reads that
  decision (`ended`).

A launch builds one ledger and hands it to the searcher, the scheduler and the callbacks. A
ledger pickles empty. Ray pickles the tuner (the scheduler, the callbacks and a searcher) in one
file, so they unpickle sharing one ledger again; the searcher Ray restores from its own snapshot
keeps the ledger it had (`FidelityAwareOptunaSearch.restore`), and the resumed launch loads
that ledger from the record (`search.run.tuner.parts` checks every part holds the same one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ray.tune import Callback

from search.engine import pareto
from search.engine.trial_errors import error_reason
from search.experiment.results import ENDED, Results
from search.spec import objective
from search.spec.outcome import Outcome, outcome_of

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


@dataclass(frozen=True)
class TrialEnd:
    """How a trial ended: what every part of a launch says about it."""

    outcome: Outcome
    epochs: int  # the last epoch it reported (0 if none)
    reason: str = ""  # why it failed, diverged, ran out of memory or was invalid
    stopped_by: str = ""  # the scheduler's stop tag, when the scheduler stopped it early
    last: dict = field(default_factory=dict, compare=False)  # its last result


class Ledger(Callback):
    """Every result and every stop of a launch's trials, and how each trial ended."""

    def __init__(self, max_epochs: int, stop_tag: str) -> None:
        self.max_epochs = max_epochs
        self.stop_tag = stop_tag  # what the scheduler's early stops are called (`asha`)
        self.last: dict[str, dict] = {}  # trial id -> the last result the driver saw
        self.stopped: set[str] = set()  # trials the scheduler stopped before their last epoch
        self.ends: dict[str, TrialEnd] = {}
        self.interrupted = False  # the launch is being stopped: running trials will resume
        # The record's journal: called with every result (set by the launch, never pickled).
        self.journal: Optional[Callable[[str, dict], None]] = None
        self._front: Optional[tuple] = None  # (what it was sorted from, the front)

    def __reduce__(self) -> tuple:
        # What it holds never travels in Ray's pickles (the record's journal has every result,
        # the record the stops): a ledger unpickles empty, and a resumed launch loads it.
        return (Ledger, (self.max_epochs, self.stop_tag))

    # --- what the launch and the scheduler tell it ---
    def stop(self, trial_id: str) -> None:
        """The scheduler stopped the trial before its last epoch."""
        self.stopped.add(trial_id)

    def restore(self, results: Results) -> None:
        """What the earlier launches of a resumed experiment recorded (the record's results):
        each trial's last result, the scheduler's stops, how the ended trials ended."""
        for trial in results.trials:
            last = trial.results[-1] if trial.results else {}
            if last:
                self.last[trial.trial_id] = last
            if trial.outcome is Outcome.STOPPED:
                self.stopped.add(trial.trial_id)
            if trial.status in ENDED:
                self.ends[trial.trial_id] = TrialEnd(
                    trial.outcome, trial.epochs, trial.error or str(last.get("reason") or ""),
                    self.stop_tag if trial.outcome is Outcome.STOPPED else "", last)

    # --- the decision ---
    def end(self, trial_id: str, *, errored: bool, last: Optional[dict] = None,
            reason: Optional[Callable[[], str]] = None) -> TrialEnd:
        """How the trial ended, decided by the first call since it (re)started; later calls
        return that decision (filling in the reason of a failure, which only the callbacks'
        event can read)."""
        known = self.ends.get(trial_id)
        if known is not None:
            if errored and not known.reason and reason is not None:
                known = self.ends[trial_id] = TrialEnd(known.outcome, known.epochs, reason(),
                                                       known.stopped_by, known.last)
            return known
        last = dict(last if last is not None else self.last.get(trial_id) or {})
        stopped = trial_id in self.stopped
        verdict = outcome_of(last, max_epochs=self.max_epochs, errored=errored,
                             stopped_by_scheduler=stopped)
        if errored:
            why = reason() if reason is not None else ""
        else:
            why = str(last.get("reason") or "")
        decided = TrialEnd(verdict, int(last.get("epoch", 0)), why,
                           self.stop_tag if verdict is Outcome.STOPPED else "", last)
        self.ends[trial_id] = decided
        return decided

    def ended(self, trial_id: str) -> Optional[TrialEnd]:
        return self.ends.get(trial_id)

    def front(self, objectives: Sequence[tuple[str, str]],
              constraints: Sequence[tuple[str, str, float]] = ()) -> list[str]:
        """The Pareto front so far of a search of several objectives: of the trials that ran
        their whole budget (those of earlier launches too, as restored), those holding every
        constraint and dominated by none, by their last results."""
        done = {t: end.last for t, end in self.ends.items() if end.outcome is Outcome.COMPLETED}
        # The progress footer asks at every result: sort again only when a trial completed.
        key = (frozenset(done), tuple(objectives), tuple(constraints))
        if self._front is None or self._front[0] != key:
            self._front = (key, pareto.front_of(
                objective.candidates(done, objectives, constraints),
                [mode for _, mode in objectives]))
        return list(self._front[1])

    # --- Tune's events: the ledger is the first callback ---
    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        # Started again (resumed, or retried after a failure): its end is open again.
        self.ends.pop(trial.trial_id, None)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict,
                        **info: Any) -> None:
        if self.interrupted:
            # Ray has taken its last snapshot of an interrupted search and still hands over
            # results while it stops the trials: a resume trains those epochs again.
            return
        self.last[trial.trial_id] = result
        if self.journal is not None:
            self.journal(trial.trial_id, result)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial,
                          **info: Any) -> None:
        self.end(trial.trial_id, errored=False, last=self.last.get(trial.trial_id)
                 or trial.last_result)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        self.end(trial.trial_id, errored=True, last=self.last.get(trial.trial_id)
                 or trial.last_result, reason=lambda: error_reason(trial))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        # A search stopped as a whole (a time limit, fail-fast) stops its running trials without
        # Tune calling on_trial_complete for them; on Ctrl+C they are cut short and resume.
        if self.interrupted:
            return
        for trial in trials:
            if trial.trial_id not in self.ends and trial.status in ("RUNNING", "TERMINATED",
                                                                    "ERROR", "PAUSED"):
                errored = trial.status == "ERROR"
                self.end(trial.trial_id, errored=errored,
                         last=self.last.get(trial.trial_id) or trial.last_result,
                         reason=(lambda t=trial: error_reason(t)) if errored else None)

