"""One search replayed on a virtual clock: the product's own searcher and scheduler (built by
`search.engine` from the spec, exactly as a launch builds them) driven the way Ray Tune's
controller drives them, with each trial's epochs taken from a predictor instead of trained.

No Ray runtime, no torch: the Ray classes are plain Python objects here. The calls follow
`ray.tune.execution.tune_controller.TuneController` (Ray 2.x): a new trial is suggested when a
slot is free; each result goes to the scheduler first, then (unless it said STOP) to the
searcher; a trial that ends (STOP, or its last epoch) is completed in the scheduler and then
in the searcher with its last result. Time advances to the next epoch to finish, each epoch
lasting what the table recorded for it.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from ray.tune.schedulers import TrialScheduler

from search.engine.ledger import Ledger
from search.engine.quiet import quiet_optuna
from search.engine.samplers import build_searcher
from search.engine.schedulers import build_scheduler
from search.replay.predict import Curve, Predictor
from search.spec import objective
from search.spec.model import SearchSpec
from search.spec.outcome import Outcome


@dataclass(frozen=True)
class Result:
    time: float  # virtual seconds since the search started
    trial_id: str
    epoch: int
    value: float  # the objective after this epoch


@dataclass
class Trial:
    """What Ray's schedulers read of a trial: its id (and config, for a custom scheduler)."""

    trial_id: str
    config: dict
    curve: Curve
    epoch: int = 0
    stopped: bool = False  # by the scheduler, before its last epoch


@dataclass
class Replay:
    results: list[Result] = field(default_factory=list)  # in the order the driver gets them
    trials: dict[str, Trial] = field(default_factory=dict)  # in start order
    end: float = 0.0  # the virtual clock when the last trial ended
    searcher: Any = None  # the searcher and scheduler after the search, as a launch leaves them
    scheduler: Any = None

    @property
    def epochs(self) -> int:
        return len(self.results)


def length(curve: Curve) -> int:
    """The results a trial reports: its epochs, plus the one that diverged (pure)."""
    return len(curve.values) + (1 if curve.diverged else 0)


def epoch_seconds(curve: Curve, epoch: int) -> float:
    """How long epoch `epoch` (1-based) takes; a diverged epoch as long as the last recorded."""
    if epoch <= len(curve.seconds):
        return float(curve.seconds[epoch - 1])
    return float(curve.seconds[-1]) if curve.seconds else 1.0


def seed_everything(seed: int) -> None:
    # Ray's ASHA draws each trial's bracket from numpy's global generator.
    random.seed(seed)
    np.random.seed(seed % 2**32)


def replay(spec: SearchSpec, predictor: Predictor, workers: int,
           seed: Optional[int] = None) -> Replay:
    """Run `spec`'s search (its sampler, scheduler, budget.trials, budget.max_epochs) against
    `predictor` with `workers` trials at a time."""
    if workers < 1:
        raise ValueError(f"workers is {workers} but must be >= 1")
    with quiet_optuna():
        return _replay(spec, predictor, workers, spec.sampler.seed if seed is None else seed)


def _replay(spec: SearchSpec, predictor: Predictor, workers: int, seed: Optional[int]) -> Replay:
    seed_everything(seed or 0)
    metric, mode, max_epochs = spec.objective.metric, spec.objective.mode, spec.budget.max_epochs
    ledger = Ledger(max_epochs, stop_tag=spec.scheduler.type)
    scheduler = build_scheduler(spec.scheduler, max_epochs, ledger)
    scheduler.set_search_properties(metric, mode)
    searcher = build_searcher(spec, ledger)
    out = Replay(searcher=searcher, scheduler=scheduler)
    clock: list[tuple[float, int, str]] = []  # (time the epoch ends, tie-break, trial)
    order = 0

    def start(now: float) -> bool:
        nonlocal order
        if len(out.trials) >= spec.budget.trials:
            return False
        trial_id = f"r{len(out.trials):05d}"
        config = searcher.suggest(trial_id)
        if not isinstance(config, dict):  # None or Searcher.FINISHED: nothing more to try
            return False
        trial = Trial(trial_id, config, predictor(config))
        out.trials[trial_id] = trial
        scheduler.on_trial_add(None, trial)
        order += 1
        heapq.heappush(clock, (now + epoch_seconds(trial.curve, 1), order, trial_id))
        return True

    def complete(trial: Trial, result: dict) -> None:
        scheduler.on_trial_complete(None, trial, result)
        searcher.on_trial_complete(trial.trial_id, result=result)

    now = 0.0
    while len(clock) < workers and start(now):
        pass
    while clock:
        now, _, trial_id = heapq.heappop(clock)
        trial = out.trials[trial_id]
        trial.epoch += 1
        result = {"epoch": trial.epoch, "training_iteration": trial.epoch, "trial_id": trial_id}
        if trial.epoch <= len(trial.curve.values):
            result[metric] = trial.curve.values[trial.epoch - 1]
        else:  # the epoch whose loss went NaN: what the trainable reports (run/trainable.py)
            result |= {"outcome": Outcome.DIVERGED.value, metric: objective.worst(mode)}
        last = trial.epoch == length(trial.curve)
        out.results.append(Result(now, trial_id, trial.epoch, result[metric]))
        decision = scheduler.on_trial_result(None, trial, result)
        if decision != TrialScheduler.STOP:
            searcher.on_trial_result(trial_id, result)
        if decision == TrialScheduler.STOP or last:
            trial.stopped = decision == TrialScheduler.STOP and trial.epoch < max_epochs
            complete(trial, result)
            while len(clock) < workers and start(now):
                pass
        else:
            order += 1
            heapq.heappush(clock, (now + epoch_seconds(trial.curve, trial.epoch + 1), order,
                                   trial_id))
    out.end = now
    return out
