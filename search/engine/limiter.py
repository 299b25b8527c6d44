"""Tune's concurrency limit without the paused trials: for schedulers whose paused trials hold
no slot (search.spec.schedulers: `paused_hold_place` False; promotion ASHA, PASHA).

Tune's `ConcurrencyLimiter` counts every trial suggested and not yet ended, paused ones too, and
Tune keeps as many trials pending (suggested ahead of a free slot) as that limit. Promotion ASHA
leaves most trials paused at a rung for the rest of the search: counted, they would soon block
every new trial, and a limit large enough not to block would have the searcher suggest that many
trials at once, before any result. This limiter counts only the trials that run or wait to run;
the scheduler tells it which trials it paused and which go on (`on_pause` / `on_unpause`, the
calls Ray's HyperBandForBOHB makes of its searcher).

Its own state (the live and paused trials) is saved with the searcher's in one file: Ray's
`ConcurrencyLimiter` saves only the searcher's, so after a restore it would forget the trials
out and never pass their ends on to the searcher.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any, Optional

from ray.tune.search import ConcurrencyLimiter, Searcher


class PausedFreeLimiter(ConcurrencyLimiter):
    """At most `max_concurrent` trials out that are not paused."""

    def __init__(self, searcher: Searcher, max_concurrent: int) -> None:
        super().__init__(searcher, max_concurrent)
        self.paused: set[str] = set()

    def suggest(self, trial_id: str) -> Optional[dict]:
        if len(self.live_trials - self.paused) >= self.max_concurrent:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion not in (None, Searcher.FINISHED):
            self.live_trials.add(trial_id)
            self.num_unfinished_live_trials += 1
        return suggestion

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None,
                          error: bool = False) -> None:
        self.paused.discard(trial_id)
        if trial_id not in self.live_trials:
            return
        self.searcher.on_trial_complete(trial_id, result=result, error=error)
        self.live_trials.discard(trial_id)
        self.num_unfinished_live_trials -= 1

    def on_pause(self, trial_id: str) -> None:
        self.paused.add(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.paused.discard(trial_id)

    # -- saved with the searcher, in the file Tune keeps for it --
    def save(self, checkpoint_path: str) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            inner = os.path.join(scratch, "searcher.pkl")
            self.searcher.save(inner)
            with open(inner, "rb") as handle:
                searcher_bytes = handle.read()
        state = {"live": sorted(self.live_trials), "paused": sorted(self.paused),
                 "max_concurrent": self.max_concurrent, "searcher": searcher_bytes}
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            state: dict[str, Any] = pickle.load(handle)
        with tempfile.TemporaryDirectory() as scratch:
            inner = os.path.join(scratch, "searcher.pkl")
            with open(inner, "wb") as handle:
                handle.write(state["searcher"])
            self.searcher.restore(inner)
        self.live_trials = set(state["live"])
        self.num_unfinished_live_trials = len(self.live_trials)
        self.paused = set(state["paused"])
