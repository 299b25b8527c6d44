"""One search replayed on a virtual clock: the product's own searcher and scheduler (built by
`search.engine` from the spec, exactly as a launch builds them) driven the way Ray Tune's
controller drives them, with each trial's epochs taken from a predictor instead of trained.

No Ray runtime, no torch: the Ray classes are plain Python objects here. The calls follow
`ray.tune.execution.tune_controller.TuneController` (Ray 2.x): new trials are suggested while
fewer than the launch's concurrency limit are out (`workers`, or more where the scheduler needs
them to fill its brackets), and the scheduler chooses which waiting trial takes a free slot;
each result goes to the scheduler first, then (unless it said STOP) to the searcher, then to
the launch's ledger; a trial that ends (STOP, or its last epoch) is completed in the scheduler
and then in the searcher with its last result. A trial the scheduler PAUSEs gives up its slot
and stays out until the scheduler chooses it to run on from where it paused, or stops it
through the controller (the searcher then hears no result, as from Tune). Time advances to the
next epoch to finish, each epoch lasting what the table recorded for it (or the benchmark
problem's clock says).

With several objectives (`spec.objective_pairs`) each result also carries the others, as a
trial reports them: a cost the benchmark gives the configuration (`Curve.costs`: latency, size)
whatever the epoch, or the trial's cumulative `train_seconds` from its epochs' seconds.

A search ends when it has run `budget.trials` trials, or, given `budget_epochs`, as soon as that
many epochs have been reported (the published protocols' budget in full-training equivalents;
trials still out then are cut off, as Tune's time budget ends an experiment).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np
from ray.tune.schedulers import TrialScheduler

from search.engine.ledger import Ledger
from search.engine.quiet import quiet_optuna
from search.engine.samplers import build_searcher
from search.engine.schedulers import build_scheduler
from search.replay.predict import Curve, Predictor, cost, epoch_seconds
from search.spec import objective
from search.spec.model import SearchSpec
from search.spec.outcome import Outcome


# Ray's trial statuses (ray.tune.experiment.Trial), as the schedulers read them.
PENDING, RUNNING, PAUSED, TERMINATED = "PENDING", "RUNNING", "PAUSED", "TERMINATED"


@dataclass(frozen=True)
class Result:
    time: float  # virtual seconds since the search started
    trial_id: str
    epoch: int
    value: float  # the objective after this epoch (the first of several)
    point: tuple[float, ...] = ()  # every objective's value after this epoch, when several


@dataclass(eq=False)  # hashable by identity, as Ray's trials are (HyperBand keys on them)
class Trial:
    """What Ray's schedulers read of a trial: its id, its status (one of Ray's) and whether a
    checkpoint is being saved (never: a replay's saves are instant), and its config for a
    custom scheduler."""

    trial_id: str
    config: dict
    curve: Curve
    epoch: int = 0
    stopped: bool = False  # by the scheduler, before its last epoch
    status: str = PENDING
    is_saving: bool = False
    paused_at: list[int] = field(default_factory=list)  # the epochs the scheduler paused it at


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


def seed_everything(seed: int) -> None:
    # Ray's ASHA draws each trial's bracket from numpy's global generator.
    random.seed(seed)
    np.random.seed(seed % 2**32)


def replay(spec: SearchSpec, predictor: Predictor, workers: int,
           seed: Optional[int] = None, budget_epochs: Optional[int] = None,
           warm: Any = None) -> Replay:
    """Run `spec`'s search (its sampler, scheduler, budget.trials, budget.max_epochs) against
    `predictor` with `workers` trials at a time, for at most `budget_epochs` epochs in all;
    `warm`: what its searcher is told first (search.engine.warm.Knowledge), as a launch does.
    `spec` is a SearchSpec or anything with its objective, budget, sampler, scheduler and space
    (search.replay.problems.spec.ProblemSearch)."""
    if workers < 1:
        raise ValueError(f"workers is {workers} but must be >= 1")
    if budget_epochs is not None and budget_epochs < 1:
        raise ValueError(f"budget_epochs is {budget_epochs} but must be >= 1")
    with quiet_optuna():
        return _replay(spec, predictor, workers, spec.sampler.seed if seed is None else seed,
                       budget_epochs, warm)


def _replay(spec: SearchSpec, predictor: Predictor, workers: int, seed: Optional[int],
            budget_epochs: Optional[int], warm: Any = None) -> Replay:
    seed_everything(seed or 0)
    metric, mode, max_epochs = spec.objective.metric, spec.objective.mode, spec.budget.max_epochs
    several = spec.objective_pairs  # () for one objective
    others = [name for name, _ in several[1:]]
    ledger = Ledger(max_epochs, stop_tag=spec.scheduler.stop_tag)
    scheduler = build_scheduler(spec.scheduler, max_epochs, ledger, spec.objective_pairs)
    scheduler.set_search_properties(metric, mode)
    searcher = build_searcher(spec, ledger, warm)
    out = Replay(searcher=searcher, scheduler=scheduler)
    clock: list[tuple[float, int, str]] = []  # (time the epoch ends, tie-break, trial)
    order = 0
    live: dict[str, Trial] = {}  # the trials out (not ended), in the order they were suggested
    # Tune's concurrency limit: `workers` run at once, and a scheduler may need more trials
    # out to fill its brackets (search.spec.schedulers), as a launch gives it (run/tuner.py).
    limit = spec.scheduler.trials_out(max_epochs, workers)

    def create() -> bool:
        """A new trial: suggested, and added to the scheduler to wait for a slot."""
        if len(out.trials) >= spec.budget.trials or spent():
            return False
        trial_id = f"r{len(out.trials):05d}"
        config = searcher.suggest(trial_id)
        if not isinstance(config, dict):  # None or Searcher.FINISHED: nothing more to try
            return False
        trial = Trial(trial_id, config, predictor(config))
        out.trials[trial_id] = live[trial_id] = trial
        scheduler.on_trial_add(controller, trial)
        return True

    def spent() -> bool:
        return budget_epochs is not None and len(out.results) >= budget_epochs

    def complete(trial: Trial, result: dict) -> None:
        trial.status = TERMINATED
        del live[trial.trial_id]
        scheduler.on_trial_complete(controller, trial, result)
        searcher.on_trial_complete(trial.trial_id, result=result)

    def stop_paused(trial: Trial) -> None:
        """What Tune does when a scheduler stops a trial it paused (HyperBand stops no other
        through the controller): the searcher hears no result (the ledger has the last)."""
        trial.status, trial.stopped = TERMINATED, trial.epoch < max_epochs
        del live[trial.trial_id]
        scheduler.on_trial_remove(controller, trial)
        searcher.on_trial_complete(trial.trial_id)

    # What schedulers call of Tune's controller (Ray lists every trial; the ended ones are
    # never chosen, so only those out are listed here), and the searcher Tune holds (a
    # scheduler tells it which trials it paused: search.engine.promotion).
    controller = SimpleNamespace(stop_trial=stop_paused, get_trials=lambda: list(live.values()),
                                 search_alg=SimpleNamespace(searcher=searcher))
    hold = spec.scheduler.paused_hold_place

    def out_now() -> int:
        """The trials counted against the limit: all those out, or, where the scheduler's
        paused trials hold no place (search.engine.limiter), those not paused."""
        return len(live) if hold else sum(t.status != PAUSED for t in live.values())

    def fill(now: float) -> None:
        """What Tune does when a slot frees: it suggests new trials while fewer than its
        concurrency limit are out (running, waiting or paused), then runs the waiting or paused
        trial the scheduler chooses (FIFO: the oldest waiting) until `workers` run."""
        while True:
            while out_now() < limit and create():
                pass
            chosen = scheduler.choose_trial_to_run(controller) if len(clock) < workers else None
            if chosen is None:
                return
            chosen.status = RUNNING
            if chosen.epoch == length(chosen.curve):
                # Paused at its last result: run again, its function returns at once and Tune
                # ends it with that result.
                complete(chosen, ledger.last[chosen.trial_id])
            else:
                push(chosen, now)

    def push(trial: Trial, now: float) -> None:
        nonlocal order
        order += 1
        heapq.heappush(clock, (now + epoch_seconds(trial.curve, trial.epoch + 1), order,
                               trial.trial_id))

    now = 0.0
    fill(now)
    while clock:
        now, _, trial_id = heapq.heappop(clock)
        trial = out.trials[trial_id]
        trial.epoch += 1
        result = {"epoch": trial.epoch, "training_iteration": trial.epoch, "trial_id": trial_id}
        if trial.epoch <= len(trial.curve.values):
            result[metric] = trial.curve.values[trial.epoch - 1]
        else:  # the epoch whose loss went NaN: what the trainable reports (run/trainable.py)
            result |= {"outcome": Outcome.DIVERGED.value, metric: objective.worst(mode)}
        result |= {name: cost(trial.curve, trial.epoch, name) for name in others}
        last = trial.epoch == length(trial.curve)
        out.results.append(Result(now, trial_id, trial.epoch, result[metric],
                                  tuple(result[name] for name, _ in several)))
        decision = scheduler.on_trial_result(controller, trial, result)
        if decision != TrialScheduler.STOP:
            searcher.on_trial_result(trial_id, result)
        ledger.on_trial_result(0, [], trial, result)  # the launch's first callback
        if spent():
            break  # the budget is spent: the experiment ends, trials in flight with it
        if decision == TrialScheduler.PAUSE:  # out until the scheduler runs or stops it
            trial.status = PAUSED
            trial.paused_at.append(trial.epoch)
            fill(now)
        elif decision == TrialScheduler.STOP or last:
            trial.stopped = decision == TrialScheduler.STOP and trial.epoch < max_epochs
            complete(trial, result)
            fill(now)
        else:
            push(trial, now)
    out.end = now
    return out
