"""What `resnet-search status` and `list` say about an experiment, read from its record alone.

    summary = summarize(experiment)      # no Ray, no MLflow: the files on disk
    summary.as_json()                    # what `--json` prints

The status is the record's, corrected by what the files show: a record saying `running` whose
driver is gone (no live lease) is `crashed` — launch it again to resume; one whose driver was
asked to stop and still runs is `stopping`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Protocol, Sequence

from resnet_core.config import DataConfig
from search.experiment.results import Results, TrialRecord
from search.experiment.state import State, Status
from search.spec import objective
from search.spec.job import TrialJob

# The trial counts status shows, in this order.
KINDS = ("running", "pending", "completed", "stopped", "killed", "failed")


def kind_of(trial: TrialRecord, live: bool = True) -> str:
    """Which count a trial goes into: how it reads (`TrialRecord.shown`, what `trials` prints:
    running, pending, or its outcome), with every kind of failure counted as failed. A trial
    Ray saved as RUNNING in a search no driver runs waits to resume: pending."""
    shown = trial.shown(live)
    return shown if shown in KINDS else "failed"


def is_live(status: str) -> bool:
    """Whether a search with this status (`status_of`) has a driver running its trials."""
    return status in (Status.RUNNING.value, "stopping")


@dataclass(frozen=True)
class Summary:
    name: str
    directory: str
    status: str  # a Status value, or "crashed" / "stopping"
    reason: Optional[str]
    driver: Optional[str]  # 'pid 1 on host, since ...' while a driver holds the lease
    metric: str
    mode: str
    trials: dict[str, int]  # KINDS -> count; "to start": trials the searcher has not made yet
    trials_budget: int
    epochs_used: int
    epochs_budget: int  # every trial to its last epoch: what a search without early stopping
    elapsed_s: float  # wall time since the experiment was created (until its last update
    eta_s: Optional[float]  # once ended); a rough ETA from the epoch rate so far, while running
    best: Optional[dict] = None  # trial_id, value, epochs, params
    parent_run_id: str = ""
    tracking_uri: str = ""
    extra: dict = field(default_factory=dict)
    extended: list = field(default_factory=list)  # every budget raise: "budget.trials: 12 -> 20"
    warm_start: Optional[dict] = None  # where a warm-started search's knowledge came from
    # Several objectives: each trial on the Pareto front (by the first objective) as
    # {trial_id, values: {metric: value at its last epoch}}; None for one objective.
    front: Optional[list] = None

    def as_json(self) -> dict:
        return asdict(self)


def job_of_saved(spec: dict) -> TrialJob:
    """The TrialJob of a saved resolved spec (the record's spec.json): no Pydantic needed."""
    objectives = tuple(objective.saved_objectives(spec))
    return TrialJob(fixed=dict(spec.get("fixed") or {}),
                    max_epochs=int(spec["budget"]["max_epochs"]),
                    metric=objectives[0][0], mode=objectives[0][1],
                    data=DataConfig(**(spec.get("data") or {})),
                    objectives=objectives if len(objectives) > 1 else (),
                    constraints=tuple(objective.saved_constraints(spec)))


def status_of(state: State, driver: Optional[str], stop_requested: bool) -> str:
    if state.status is not Status.RUNNING:
        return state.status.value
    if driver is None:
        return "crashed"
    return "stopping" if stop_requested else Status.RUNNING.value


class Spent(Protocol):
    """What `eta` reads of a trial (a TrialRecord, or what launch's progress keeps of one)."""

    @property
    def epochs(self) -> int: ...


def eta(used: int, elapsed_s: float, ended: Sequence[Spent], running: Sequence[Spent],
        not_ended: int, max_epochs: int) -> Optional[float]:
    """Seconds left at the epoch rate so far. A trial still to start spends what the ended ones
    spent on average (ASHA stops most early); a running trial at epoch e spends what the ended
    trials that got past e spent beyond it, or runs to `max_epochs` when none did (it is the
    longest-lived so far). None until a trial has ended. (Counting a running trial as an
    average one said "ETA 0 s" with a quarter of the search to go: the trials running are the
    survivors, and they run longest.)"""
    if not ended or used <= 0 or elapsed_s <= 0:
        return None
    per_trial = sum(t.epochs for t in ended) / len(ended)
    to_start = max(0, not_ended - len(running))
    left = per_trial * to_start + sum(_rest(t.epochs, ended, max_epochs) for t in running)
    return left / (used / elapsed_s)


def _rest(epoch: int, ended: Sequence[Spent], max_epochs: int) -> float:
    """The epochs a trial running at `epoch` is expected to spend still."""
    beyond = [t.epochs - epoch for t in ended if t.epochs > epoch]
    return sum(beyond) / len(beyond) if beyond else float(max(0, max_epochs - epoch))


def summarize(name: str, directory: str, state: State, results: Results, spec: dict,
              driver: Optional[str], stop_requested: bool,
              now: Optional[float] = None,
              front: Optional[Callable[[Results], list[str]]] = None) -> Summary:
    """The pure rule: the record's pieces in, a Summary out; `front` gives the trials on a
    search's Pareto front (search.engine.pareto.on_front) for a search of several."""
    now = time.time() if now is None else now
    status = status_of(state, driver, stop_requested)
    trials_budget = int(spec["budget"]["trials"])
    max_epochs = int(spec["budget"]["max_epochs"])
    live = is_live(status)
    kinds = {t.trial_id: kind_of(t, live) for t in results.trials}
    counts = dict.fromkeys(KINDS, 0)
    for kind in kinds.values():
        counts[kind] += 1
    counts["to start"] = max(0, trials_budget - len(results.trials)) if status in (
        "running", "stopping", "crashed", Status.INTERRUPTED.value) else 0
    ended = [t for t in results.trials if kinds[t.trial_id] not in ("running", "pending")]
    running = [t for t in results.trials if kinds[t.trial_id] == "running"]
    elapsed = (now if live else state.updated_at) - state.created_at
    best = results.best
    return Summary(
        name=name, directory=directory, status=status, reason=state.reason, driver=driver,
        metric=results.metric, mode=results.mode, trials=counts, trials_budget=trials_budget,
        epochs_used=results.epochs_used, epochs_budget=trials_budget * max_epochs,
        elapsed_s=round(max(0.0, elapsed), 1),
        eta_s=None if not live else eta(results.epochs_used, elapsed, ended, running,
                                        trials_budget - len(ended), max_epochs),
        best=None if best is None else {"trial_id": best.trial_id, "value": best.best,
                                        "epochs": best.epochs, "params": best.params},
        parent_run_id=state.parent_run_id, tracking_uri=state.tracking_uri,
        extended=[c for entry in state.extended for c in entry.get("changes", [])],
        warm_start=state.warm_start,
        front=None if front is None or not results.objectives else [
            {"trial_id": t.trial_id, "values": results.values(t)}
            for t in results.trials if t.trial_id in set(front(results))])
