"""How a trial ended: one pure rule from its last result. The engines map it onto their own
states (`search.engine.trial_states.OPTUNA_STATE`, `search.tracking.runbook.MLFLOW_STATUS`).

It lives with the trial's other terms in the spec's pure modules (no Pydantic, no engine):
a trial that ends itself reports its outcome in its last result (search/run/trainable.py, on a
Ray worker, beside the `TrialJob` it was given), and every floor above reads it from there: the
record, the engines, the mirror, the progress lines and the report.

Stock Ray `OptunaSearch` tells Optuna COMPLETE for any trial that reported a value, so a trial
ASHA stopped after 2 of 30 epochs enters TPE as if its 2-epoch accuracy were final. Here such a
trial is PRUNED: Optuna keeps its intermediate values and ranks it by how far it got, which is
exactly the information early stopping produced.
"""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    COMPLETED = "completed"  # ran every epoch of the budget
    STOPPED = "stopped"  # the scheduler stopped it early: a partial-budget result
    KILLED = "killed"  # ended early by the experiment (time limit, Ctrl+C), not by the scheduler
    DIVERGED = "diverged"  # the loss became NaN/inf: final for this config, not retried
    OOM = "oom"  # out of memory: final for this config on this hardware, not retried
    INVALID = "invalid"  # the sampled combination breaks a cross-field rule of the model
    FAILED = "failed"  # raised, and exhausted its retries


# What a trial reports in its last result when it ends itself (see search/run/trainable.py).
SELF_REPORTED = {o.value: o for o in (Outcome.DIVERGED, Outcome.OOM, Outcome.INVALID)}


def outcome(*, epochs_done: int, max_epochs: int, errored: bool = False,
            reported: str | None = None, stopped_by_scheduler: bool = False) -> Outcome:
    if errored:
        return Outcome.FAILED
    if reported in SELF_REPORTED:
        return SELF_REPORTED[reported]
    if epochs_done >= max_epochs:
        return Outcome.COMPLETED
    return Outcome.STOPPED if stopped_by_scheduler else Outcome.KILLED


def outcome_of(last: dict, *, max_epochs: int, errored: bool = False,
               stopped_by_scheduler: bool = False) -> Outcome:
    """The outcome of a trial from its last reported result (see search/run/trainable.py)."""
    return outcome(epochs_done=int(last.get("epoch", 0)), max_epochs=max_epochs, errored=errored,
                   reported=last.get("outcome"), stopped_by_scheduler=stopped_by_scheduler)
