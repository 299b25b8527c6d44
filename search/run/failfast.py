"""Abort a search whose first trials all fail the same way, before it burns the budget.

A missing or corrupt file, a broken environment, a fixed value the model rejects, a batch that
never fits in memory: these fail every trial identically, and Ray would dutifully run (and
retry) all of them. When the first K trials to end all failed with the same error, the search
stops with a summary instead. One success among them, or K different errors, and it goes on:
then failures belong to particular configs, which is what a search is for. Divergence never
counts — a NaN at lr=10 is a result about lr, not a broken search.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ray.tune import Callback, Stopper

from search.engine.ledger import Ledger
from search.engine.trial_errors import error_reason
from search.run.fullstorage import no_space
from search.spec.outcome import Outcome

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

# Outcomes that say nothing about the config's quality but a lot about the set-up.
COUNTED = {Outcome.FAILED, Outcome.INVALID, Outcome.OOM}

# Sizes, addresses and counts vary between otherwise identical errors ("tried to allocate
# 2.00 GiB" vs "1.50 GiB"): they are left out when errors are compared.
_VARYING = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")


def signature(reason: str) -> str:
    return _VARYING.sub("#", reason.strip().splitlines()[0] if reason.strip() else "")


def repeated_failure(ends: Sequence[Optional[str]], k: int) -> bool:
    """Given the error signatures of trials in the order they ended (None: no counted error),
    whether the first `k` all failed alike."""
    if k <= 0 or len(ends) < k:
        return False
    first = ends[:k]
    return first[0] is not None and all(end == first[0] for end in first)


class FailFast(Callback, Stopper):
    """Counts how trials end, as the ledger decides (a Tune callback), and stops the experiment
    (a Tune stopper) when `repeated_failure` says so. Not saved with the experiment: a relaunch
    starts counting anew."""

    def __init__(self, k: int, ledger: Ledger) -> None:
        self.k = k
        self.ledger = ledger  # how each trial ended (search.engine.ledger)
        self.ends: list[Optional[str]] = []
        self.examples: list[tuple[str, str]] = []  # (trial id, reason) of the counted failures
        self.tripped: Optional[str] = None  # the summary, once the search was stopped

    def __setstate__(self, state: dict) -> None:
        state.pop("max_epochs", None)  # resnet-search 0.2: the ledger decides now
        self.__dict__.update({"ledger": None, **state})

    def _ended(self, trial: Trial, errored: bool) -> None:
        if self.tripped or len(self.ends) >= self.k:
            return  # decided either way
        end = self.ledger.end(trial.trial_id, errored=errored,
                              last=self.ledger.last.get(trial.trial_id) or trial.last_result,
                              reason=lambda: error_reason(trial))
        counted = end.outcome in COUNTED and not no_space(end.reason)  # the disk, not the set-up
        self.ends.append(f"{end.outcome.value}: {signature(end.reason)}" if counted else None)
        if counted:
            self.examples.append((trial.trial_id, f"{end.outcome.value}: {end.reason}"))
        if repeated_failure(self.ends, self.k):
            trial_ids = ", ".join(trial_id for trial_id, _ in self.examples)
            self.tripped = (f"the first {self.k} trials to end all failed the same way "
                            f"({trial_ids}): {self.examples[0][1]}")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial,
                          **info: Any) -> None:
        self._ended(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        self._ended(trial, errored=True)

    # --- Stopper: Tune asks after every step ---
    def __call__(self, trial_id: str, result: dict) -> bool:
        return False  # single trials end by themselves; only the whole search is stopped here

    def stop_all(self) -> bool:
        return self.tripped is not None
