"""Warm start: what earlier experiments learnt, told to a new search's Optuna study before the
searcher proposes anything (`warm_start:` in the spec, `--warm-from` on the command line).

Each earlier trial reaches the study as the live searcher would have told it (the one table in
`trial_states`): a completed trial COMPLETE with its final epoch's value, one ASHA stopped PRUNED
with its per-epoch values, a diverged or invalid one PRUNED; a failed or unfinished one is not
told. Its parameters are made a point of the *new* space first (`adapted`, a pure rule):

- a parameter the new space lacks (or whose `when:` no longer holds) is dropped;
- a number outside the new range is clipped to it (and put on its step's grid);
- a trial missing a parameter the new space samples, or with a choice the new space does not
  offer, is not told: no value of it would be the truth.

A TPE sampler counts told trials towards `n_startup_trials`, so a warm search models from its
first proposal. `enqueue` configurations are queued (`Study.enqueue_trial`): the first trials
Ray starts train them, as written. One line says how many trials were told and why the others
were not; the record, the MLflow parent and `validate` keep it. With `warm_start.narrow` the
new searcher samples the bounding box of the earlier best trials (search/engine/narrow.py) and
is told only the trials inside it.
"""

from __future__ import annotations

import math
from decimal import Decimal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.engine.space import optuna_params
from search.engine.study import replayed, state_of, value_of
from search.experiment.results import Results, TrialRecord
from search.spec.points import active, order

TOLD = (TrialState.COMPLETE, TrialState.PRUNED)
SOURCE_ATTR = "warm_start"  # the user attr naming where a told trial came from
ENQUEUE = "enqueue"  # ... or that a queued one was written in `warm_start.enqueue`


@dataclass(frozen=True)
class Earlier:
    """One earlier experiment as the new search reads it: how the user named it, its results
    (best first) and the resolved spec it ran with."""

    source: str
    results: Results


@dataclass
class Adapted:
    """One earlier trial's parameters as a point of the new space, or why it is none."""

    point: Optional[dict[str, Any]]
    why: str = ""  # why no point (the trial is not told)
    dropped: list[str] = field(default_factory=list)  # parameters the new space lacks
    clipped: list[str] = field(default_factory=list)  # parameters moved into the new range


def clip(param: Any, value: Any) -> Any:
    """A number inside the parameter's range, on its step's grid (Optuna's `step`)."""
    value = min(max(value, param.low), param.high)
    step = None if param.log and param.kind == "int" else param.step
    if step:
        # in decimal: a grid point as written (0.3, not 0.30000000000000004), so a narrowed
        # range that starts there still divides by the step for Optuna
        grid = Decimal(str(param.low)) + round((value - param.low) / step) * Decimal(str(step))
        value = min(float(grid), param.high)
    if param.kind == "int":
        return int(round(value))
    return float(value)


def adapted(space: Mapping[str, Any], params: Mapping[str, Any]) -> Adapted:
    """The point of `space` an earlier trial's `params` are (pure; see the module's rules)."""
    point: dict[str, Any] = {}
    clipped: list[str] = []
    for name in order(space):
        param = space[name]
        if not active(param.when, point):
            continue
        if name not in params:
            return Adapted(None, f"lack {name}")
        value = params[name]
        if param.kind == "choice":
            if value not in list(param.choices):
                return Adapted(None, f"have a {name} the space does not offer")
        else:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value):
                return Adapted(None, f"have a {name} that is not a number")
            moved = clip(param, value)
            if moved != value:
                clipped.append(name)
            value = moved
        point[name] = value
    return Adapted(point, dropped=[n for n in params if n not in point], clipped=clipped)


@dataclass
class Knowledge:
    """What a warm start tells the new study, and the line that says so."""

    trials: list[FrozenTrial]
    enqueue: list[dict[str, Any]]
    sources: list[str]
    of: int  # earlier trials looked at
    text: str
    narrowing: Any = None  # search.engine.narrow.Narrowing when `warm_start.narrow` is set
    # where each queued configuration came from: "enqueue", or the earlier experiment whose
    # best it is (`queue_best`); as long as `enqueue`
    queued_from: list[str] = field(default_factory=list)

    def space(self, declared: Mapping[str, Any]) -> Mapping[str, Any]:
        """The space the new searcher samples: the narrowed one, or the declared one."""
        return declared if self.narrowing is None else self.narrowing.space

    def lines(self) -> list[str]:
        """What `launch` and `validate` print: the line, then the narrowed space if any."""
        return [self.text, *(self.narrowing.lines() if self.narrowing is not None else [])]

    def record(self) -> dict:
        """What the experiment record (`State.warm_start`) and MLflow keep of it."""
        states = Counter(t.state.name.lower() for t in self.trials)
        kept = {"from": list(self.sources), "told": len(self.trials), "of": self.of,
                "completed": states.get("complete", 0), "stopped": states.get("pruned", 0),
                "enqueued": len(self.enqueue), "text": self.text}
        best = [s for s in self.queued_from if s != ENQUEUE]
        if best:
            kept["queued_best"] = best
        if self.narrowing is not None:
            kept["narrowed"] = self.narrowing.record()
        return kept


OUTSIDE = "lie outside the narrowed space"


def outside(narrowed: Mapping[str, Any], point: Mapping[str, Any]) -> bool:
    """Whether a point of the declared space lies outside the narrowed one. Such a trial is not
    told: clipped onto the box's edge it would teach the searcher that the edge scored it."""
    from search.spec.warm import value_problem

    return any(value_problem(narrowed[name], value) is not None
               for name, value in point.items())


def told_trial(trial: TrialRecord, space: Mapping[str, Any], source: str,
               narrowed: Optional[Mapping[str, Any]] = None
               ) -> tuple[Optional[FrozenTrial], Adapted]:
    """An earlier trial as the new study is told it, or None with why not (in Adapted.why).
    `narrowed`: the space the new searcher samples when `warm_start.narrow` narrowed it."""
    state = state_of(trial.outcome, trial.status)
    if state not in TOLD:
        why = "were unfinished" if state in (TrialState.RUNNING, TrialState.WAITING) else \
            "failed"
        return None, Adapted(None, why)
    value = value_of(state, trial)
    if state == TrialState.COMPLETE and value is None:
        return None, Adapted(None, "have no final value")
    found = adapted(space, trial.params)
    if found.point is None:
        return None, found
    if narrowed is not None and outside(narrowed, found.point):
        return None, Adapted(None, OUTSIDE)
    try:
        params, distributions = replayed(narrowed or space, found.point)
    except ValueError:
        return None, Adapted(None, "are no point of the space")
    return optuna.trial.create_trial(
        state=state, value=value, params=params, distributions=distributions,
        intermediate_values=dict(trial.curve()),
        user_attrs={SOURCE_ATTR: source, "trial_id": trial.trial_id,
                    "outcome": trial.outcome.value}), found


def knowledge(space: Mapping[str, Any], metric: str, mode: str, earlier: list[Earlier],
              top: Optional[int] = None, enqueue: Optional[list[dict]] = None,
              narrow: Optional[int] = None, queue_best: Optional[int] = None) -> Knowledge:
    """Every earlier experiment's trials (the `top` best told of each, best first) as the new
    study is told them, and the one line that says how many were and why the others were not.
    An experiment that optimised another objective is not told at all: its values would
    mean something else. `narrow`: the space narrowed to the box of the `narrow` best trials
    of each (search/engine/narrow.py); only trials inside it are told. `queue_best`: the
    best completed configurations of each queued after `enqueue` (`best_points`)."""
    from search.engine.narrow import narrowing

    narrowed = None if narrow is None else narrowing(space, metric, mode, earlier, narrow,
                                                     enqueue)
    trials: list[FrozenTrial] = []
    why: Counter = Counter()
    dropped: Counter = Counter()
    clipped: Counter = Counter()
    looked = 0
    queued = [dict(point) for point in enqueue or []]
    queued_from = [ENQUEUE] * len(queued)
    for one in earlier:
        results = one.results
        looked += len(results.trials)
        if (results.metric, results.mode) != (metric, mode):
            why[f"optimised {results.mode} {results.metric}"] += len(results.trials)
            continue
        if queue_best is not None:
            best = [p for p in best_points(results, space, queue_best,
                                           narrowed.space if narrowed is not None else None)
                    if p not in queued]
            queued += best
            queued_from += [one.source] * len(best)
        kept = 0
        for trial in results.trials:
            if top is not None and kept >= top:
                why[f"were beyond the top {top}"] += 1
                continue
            frozen, found = told_trial(trial, space, one.source,
                                       narrowed.space if narrowed is not None else None)
            if frozen is None:
                why[found.why] += 1
                continue
            kept += 1
            trials.append(frozen)
            dropped.update(found.dropped)
            clipped.update(found.clipped)
    return Knowledge(trials, queued, [e.source for e in earlier], looked,
                     line(trials, looked, [e.source for e in earlier], why, dropped, clipped,
                          len(queued), narrowed.summary() if narrowed is not None else "",
                          best=len(queued) - queued_from.count(ENQUEUE)),
                     narrowed, queued_from)


def best_points(results: Results, space: Mapping[str, Any], n: int,
                narrowed: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
    """The points of `space` the `n` best completed trials of an earlier experiment are (its
    trials come best first), each once; a trial no point of the space (or of the narrowed
    one) represents is passed over. Only completed trials: their value is the full budget's."""
    points: list[dict[str, Any]] = []
    for trial in results.trials:
        if len(points) >= n:
            break
        if state_of(trial.outcome, trial.status) != TrialState.COMPLETE:
            continue
        point = adapted(space, trial.params).point
        if point is None or point in points or (narrowed is not None
                                                and outside(narrowed, point)):
            continue
        points.append(point)
    return points


def line(trials: list[FrozenTrial], looked: int, sources: list[str], why: Counter,
         dropped: Counter, clipped: Counter, queued: int, narrowed: str = "",
         best: int = 0) -> str:
    """'warm start: told 30 of 32 earlier trials (8 completed, 22 stopped) from runs/a; not
    told: 2 failed; dropped (not in this space): momentum in 12; clipped into range: lr in 3;
    3 configurations queued first (2 earlier best); space narrowed to the best 2 of each: lr,
    block'. `best`: how many of the `queued` are earlier experiments' best (`queue_best`)."""
    parts = []
    if sources:
        states = Counter(t.state for t in trials)
        parts.append(f"told {len(trials)} of {looked} earlier trials "
                     f"({states[TrialState.COMPLETE]} completed, "
                     f"{states[TrialState.PRUNED]} stopped) from {', '.join(sources)}")
    if why:
        parts.append("not told: " + ", ".join(f"{n} {reason}"
                                              for reason, n in why.most_common()))
    if dropped:
        parts.append("dropped (not in this space): "
                     + ", ".join(f"{name} in {n}" for name, n in sorted(dropped.items())))
    if clipped:
        parts.append("clipped into range: "
                     + ", ".join(f"{name} in {n}" for name, n in sorted(clipped.items())))
    if queued:
        parts.append(f"{queued} configuration{'s' if queued != 1 else ''} queued first"
                     + (f" ({best} earlier best)" if best else ""))
    if narrowed:
        parts.append(narrowed)
    return "warm start: " + "; ".join(parts)


def tell(study: optuna.Study, space: Mapping[str, Any], known: Knowledge) -> None:
    """Give a new study what the warm start knows: the earlier trials, then the queue (trained
    even when a told trial has the same configuration: the user asked for it). `space`: the
    one the searcher samples (`Knowledge.space`)."""
    study.add_trials(known.trials)
    sources = known.queued_from or [ENQUEUE] * len(known.enqueue)
    for point, source in zip(known.enqueue, sources):
        study.enqueue_trial(optuna_params(space, point), user_attrs={SOURCE_ATTR: source})
