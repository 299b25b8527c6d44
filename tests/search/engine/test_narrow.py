"""`warm_start.narrow`: the bounding box of the earlier searches' best trials (a table of the pure
rule), the best trials it rests on, only trials inside it told, and a real searcher that samples
only inside it."""

from __future__ import annotations

import math

import pytest

from search.engine import compat, narrow, warm
from search.engine.ledger import Ledger
from search.engine.samplers import build_searcher
from search.experiment.results import Results, TrialRecord
from search.spec.model import parse_spec
from search.spec.outcome import Outcome

MILESTONES = [[0.5, 0.75], [0.3, 0.6, 0.9]]
SPACE = {"lr": {"float": [0.01, 0.5], "log": True},
         "batch_size": {"int": [16, 256], "log": True},
         "residual": {"choice": ["add", "scaled", "normalized"]},
         "residual_scale": {"float": [0.1, 1.0], "step": 0.1, "when": {"residual": "scaled"}},
         "milestones": {"choice": MILESTONES}}


def spec_of(space: dict = SPACE, **changes):
    return parse_spec({"name": "narrow-test", "data": {"dataset": "digits"},
                       "budget": {"trials": 8, "max_epochs": 3},
                       "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 3},
                       "space": space, **changes})


@pytest.fixture(scope="module")
def space():
    return spec_of().space


def shown(b: narrow.Bound):
    param = b.narrowed
    return (list(param.choices) if param.kind == "choice" else [param.low, param.high]), b.on


@pytest.mark.parametrize("name, values, narrowed, on", [
    # a number: [min, max] of the values, the declared scale kept
    ("lr", [0.02, 0.2, 0.05], [0.02, 0.2], 3),
    # one value: a range of one point
    ("lr", [0.05], [0.05, 0.05], 1),
    # outside the declared range: clipped into it first (the box never grows)
    ("lr", [0.001, 0.1], [0.01, 0.1], 2),
    ("lr", [0.9, 0.3], [0.3, 0.5], 2),
    # an int stays an int
    ("batch_size", [32, 128, 64], [32, 128], 3),
    ("batch_size", [8, 64], [16, 64], 2),
    # on the step's grid, as written (0.3, not 0.30000000000000004)
    ("residual_scale", [0.33, 0.71], [0.3, 0.7], 2),
    # a choice: the declared choices used, in the declared order
    ("residual", ["scaled", "add", "scaled"], ["add", "scaled"], 3),
    # a value the declared space cannot offer counts for nothing
    ("residual", ["scaled", "fixup"], ["scaled"], 1),
    # a list-valued choice compares by value
    ("milestones", [[0.3, 0.6, 0.9]], [[0.3, 0.6, 0.9]], 1),
    # none of the best had it (or none a usable value): kept as declared
    ("lr", [], [0.01, 0.5], 0),
    ("lr", ["fast", math.nan], [0.01, 0.5], 0),
    ("residual", ["fixup"], ["add", "scaled", "normalized"], 0),
])
def test_bound(space, name, values, narrowed, on):
    found = narrow.bound(space[name], values)
    assert shown(found) == (narrowed, on)
    # the scale and condition stay as declared
    assert found.narrowed.when == space[name].when
    if space[name].kind != "choice":
        assert (found.narrowed.log, found.narrowed.step) == (space[name].log, space[name].step)
        assert all(type(v) is type(space[name].low) for v in (found.narrowed.low,
                                                             found.narrowed.high))


def test_box_bounds_each_parameter_by_the_points_that_have_it(space):
    points = [{"lr": 0.1, "residual": "add", "batch_size": 64, "milestones": [0.5, 0.75]},
              {"lr": 0.2, "residual": "scaled", "residual_scale": 0.5, "momentum": 0.9}]
    bounds = narrow.box(space, points)
    assert set(bounds) == set(space)  # never a parameter added (momentum) nor removed
    assert {name: shown(b) for name, b in bounds.items()} == {
        "lr": ([0.1, 0.2], 2), "batch_size": ([64, 64], 1), "residual": (["add", "scaled"], 2),
        "residual_scale": ([0.5, 0.5], 1), "milestones": ([[0.5, 0.75]], 1)}
    assert bounds["lr"].line("lr") == "lr: float [0.01, 0.5] log -> float [0.1, 0.2] log (on 2)"
    assert narrow.box(space, [])["lr"].line("lr") == (
        "lr: float [0.01, 0.5] log (kept: no best trial had it)")


def record(trial_id: str, values: list, outcome: Outcome, params: dict,
           status: str = "TERMINATED") -> TrialRecord:
    results = [{"epoch": e, "val_acc": v} for e, v in enumerate(values, 1)]
    finite = [v for v in values if math.isfinite(v)]
    return TrialRecord(trial_id=trial_id, params=params, config={}, results=results,
                       status=status, error=None, checkpoint=None, outcome=outcome,
                       best=max(finite) if finite else None, epochs=len(values),
                       metric="val_acc")


BASE = {"lr": 0.1, "batch_size": 64, "residual": "add", "milestones": [0.5, 0.75]}
EARLIER = Results("val_acc", "max", [  # best first, as the record lists them
    record("fail", [0.95], Outcome.FAILED, {**BASE, "lr": 0.45}, status="ERROR"),
    record("a", [0.5, 0.9], Outcome.COMPLETED, {**BASE, "lr": 0.05}),
    record("b", [0.8], Outcome.STOPPED, {**BASE, "lr": 0.2, "batch_size": 32}),
    record("c", [0.4, 0.7], Outcome.COMPLETED, {**BASE, "lr": 0.3}),
    record("d", [0.6], Outcome.STOPPED, {**BASE, "lr": 0.1, "residual": "normalized"}),
])


def test_the_box_rests_on_the_best_told_trials_of_each_experiment(space):
    """A failed trial is no best trial; the next two are, from each experiment of the same
    objective; another objective's best count for nothing; the queue is in the box too."""
    other = Results("val_loss", "min", [record("z", [0.1], Outcome.COMPLETED,
                                               {**BASE, "lr": 0.011})])
    found = narrow.narrowing(space, "val_acc", "max",
                             [warm.Earlier("a", EARLIER), warm.Earlier("o", other)], top=2,
                             enqueue=[{**BASE, "lr": 0.04}])
    assert (found.trials, found.queued) == (2, 1)
    assert shown(found.bounds["lr"]) == ([0.04, 0.2], 3)
    assert shown(found.bounds["batch_size"]) == ([32, 64], 3)
    assert shown(found.bounds["residual"]) == (["add"], 3)
    assert found.lines()[0] == ("warm start: space narrowed to the bounding box of the 2 best "
                                "trials of each earlier experiment (2 trials and 1 queued "
                                "configuration):")
    assert found.summary() == "space narrowed to the 2 best of each: lr, batch_size, " \
                              "residual, milestones"


def test_only_trials_inside_the_box_are_told_and_the_record_says_so(space):
    known = warm.knowledge(space, "val_acc", "max", [warm.Earlier("runs/a", EARLIER)],
                           narrow=2)
    assert sorted(t.user_attrs["trial_id"] for t in known.trials) == ["a", "b"]
    assert known.text == ("warm start: told 2 of 5 earlier trials (1 completed, 1 stopped) from "
                          "runs/a; not told: 2 lie outside the narrowed space, 1 failed; space "
                          "narrowed to the 2 best of each: lr, batch_size, residual, milestones")
    assert known.lines()[1:] == known.narrowing.lines()
    kept = known.record()["narrowed"]
    assert kept["top"] == 2 and kept["trials"] == 2
    assert kept["params"]["lr"] == {"declared": "float [0.01, 0.5] log",
                                    "narrowed": "float [0.05, 0.2] log", "on": 2}
    # the MLflow parent's tag: one parameter a line
    from search.tracking.store import warm_start_tags

    tags = warm_start_tags(known.record())
    assert tags["warm_start.narrowed"].splitlines()[0] == (
        "lr: float [0.01, 0.5] log -> float [0.05, 0.2] log (on 2)")
    assert "warm_start.narrowed" not in warm_start_tags(
        warm.knowledge(space, "val_acc", "max", [warm.Earlier("a", EARLIER)]).record())
    # the same trials are told, and the line unchanged, without narrowing
    assert "narrowed" not in warm.knowledge(space, "val_acc", "max",
                                            [warm.Earlier("a", EARLIER)]).record()


def test_a_narrowed_searcher_samples_only_inside_the_box():
    spec = spec_of(sampler={"type": "tpe", "seed": 0, "n_startup_trials": 3})
    known = warm.knowledge(spec.space, "val_acc", "max", [warm.Earlier("a", EARLIER)], narrow=3)
    searcher = build_searcher(spec, Ledger(3, stop_tag=spec.scheduler.stop_tag), known)
    proposals = [searcher.suggest(f"t{i}") for i in range(12)]
    assert all(0.05 <= p["lr"] <= 0.3 for p in proposals), proposals
    assert all(32 <= p["batch_size"] <= 64 for p in proposals), proposals
    assert {p["residual"] for p in proposals} == {"add"}
    assert {tuple(p["milestones"]) for p in proposals} == {(0.5, 0.75)}
    assert len(compat.optuna_study(searcher).trials) == 3 + 12  # told, then proposed
