"""Fidelity-aware OptunaSearch against real Optuna (no Ray runtime needed)."""

import math

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from search.engine.ledger import Ledger
from search.engine.rung_sampler import values_at
from search.engine.samplers import OPTUNA_STATE, SAMPLERS, FidelityAwareOptunaSearch
from search.spec.outcome import Outcome


def space(trial):
    trial.suggest_float("x", 0.0, 1.0)


def make(max_epochs=5, stopped=("a",)):
    ledger = Ledger(max_epochs, stop_tag="asha")
    for trial_id in stopped:
        ledger.stop(trial_id)
    return FidelityAwareOptunaSearch(space=space, metric="val_acc", mode="max", ledger=ledger,
                                     sampler=optuna.samplers.RandomSampler(seed=0))


def run(searcher, trial_id, values, **complete):
    assert "x" in searcher.suggest(trial_id)
    for epoch, value in enumerate(values, 1):
        searcher.on_trial_result(trial_id, {"epoch": epoch, "val_acc": value,
                                            "training_iteration": epoch})
    last = {"epoch": len(values), "val_acc": values[-1], **complete.pop("extra", {})}
    searcher.on_trial_complete(trial_id, last, **complete)
    return searcher._ot_study.trials[-1]


def test_trial_stopped_early_is_pruned_with_its_intermediate_values():
    trial = run(make(), "a", [0.3, 0.5])
    assert trial.state is TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.3, 2: 0.5}
    # Optuna's own convention: a pruned trial carries its last intermediate value, and TPE
    # ranks pruned trials by the step they reached before that value.
    assert trial.value == 0.5


def test_stock_optuna_search_reports_the_same_trial_as_complete():
    stock = OptunaSearch(space=space, metric="val_acc", mode="max",
                         sampler=optuna.samplers.RandomSampler(seed=0))
    trial = run(stock, "a", [0.3, 0.5])
    assert trial.state is TrialState.COMPLETE and trial.value == 0.5


def test_full_budget_trial_is_complete_with_its_last_value():
    trial = run(make(), "a", [0.3, 0.5, 0.6, 0.7, 0.8])
    assert trial.state is TrialState.COMPLETE and trial.value == 0.8


def test_diverged_trial_is_pruned_and_its_non_finite_value_never_reaches_optuna():
    trial = run(make(), "a", [0.3, -math.inf], extra={"outcome": "diverged"})
    assert trial.state is TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.3}


@pytest.mark.parametrize("complete", [{"error": True}, {"extra": {"outcome": "oom"}}])
def test_errors_and_out_of_memory_are_failures(complete):
    assert run(make(), "a", [0.3], **complete).state is TrialState.FAIL


def test_unknown_trial_completion_is_ignored():
    searcher = make()
    searcher.on_trial_complete("never-suggested", {"epoch": 1, "val_acc": 0.1})
    assert searcher._ot_study is None or len(searcher._ot_study.trials) == 0


@pytest.mark.parametrize("kind", sorted(SAMPLERS))
def test_every_registered_sampler_builds(kind):
    from pydantic import TypeAdapter

    from search.spec.model import Sampler
    spec = TypeAdapter(Sampler).validate_python({"type": kind, "seed": 0})  # its defaults
    assert isinstance(SAMPLERS[kind](spec), optuna.samplers.BaseSampler)


@pytest.mark.parametrize("verdict, state", [
    (Outcome.COMPLETED, TrialState.COMPLETE), (Outcome.STOPPED, TrialState.PRUNED),
    (Outcome.KILLED, TrialState.PRUNED), (Outcome.DIVERGED, TrialState.PRUNED),
    (Outcome.OOM, TrialState.FAIL), (Outcome.INVALID, TrialState.PRUNED),
    (Outcome.FAILED, TrialState.FAIL),
])
def test_every_outcome_maps_to_an_optuna_state(verdict, state):
    assert OPTUNA_STATE[verdict] is state


def test_the_state_told_to_optuna_is_the_ledgers_decision():
    """The searcher decides nothing itself: when a callback's event had the ledger decide first
    (or a resumed launch loaded the decision from the record), Optuna hears that decision."""
    searcher = make(stopped=())
    searcher.ledger.end("a", errored=True, last={"epoch": 5, "val_acc": 0.9},
                        reason=lambda: "RuntimeError: boom")
    trial = run(searcher, "a", [0.3, 0.5, 0.6, 0.7, 0.9])  # looks complete; it failed
    assert trial.state is TrialState.FAIL
    assert searcher.ledger.ended("a").reason == "RuntimeError: boom"
    trial = run(searcher, "b", [0.3, 0.5])  # not decided before: the searcher has it decided
    assert trial.state is TrialState.PRUNED and searcher.ledger.ended("b").epochs == 2


# --- several objectives, constraints ------------------------------------------------------------

def make_several(max_epochs=2, stopped=(), constraints=(), sampler=None):
    ledger = Ledger(max_epochs, stop_tag="asha")
    for trial_id in stopped:
        ledger.stop(trial_id)
    return FidelityAwareOptunaSearch(
        space=space, metric=["val_acc", "params"], mode=["max", "min"], ledger=ledger,
        constraints=constraints, sampler=sampler or optuna.samplers.RandomSampler(seed=0))


def run_several(searcher, trial_id, rows):
    searcher.suggest(trial_id)
    for epoch, row in enumerate(rows, 1):
        searcher.on_trial_result(trial_id, {"epoch": epoch, **row})
    searcher.on_trial_complete(trial_id, {"epoch": len(rows), **rows[-1]})
    return searcher._ot_study.trials[-1]


def test_several_objectives_are_told_as_one_vector_and_a_stopped_trial_as_pruned():
    searcher = make_several(stopped=("b",))
    done = run_several(searcher, "a", [{"val_acc": 0.3, "params": 9.0},
                                       {"val_acc": 0.6, "params": 9.0}])
    assert searcher._ot_study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                             optuna.study.StudyDirection.MINIMIZE]
    assert done.state is TrialState.COMPLETE and done.values == [0.6, 9.0]
    assert done.intermediate_values == {}  # Optuna keeps none for several objectives
    stopped = run_several(searcher, "b", [{"val_acc": 0.1, "params": 5.0}])
    assert stopped.state is TrialState.PRUNED and stopped.values is None
    # each epoch's values saved for a rung model (search.engine.rung_sampler), the stopped
    # trial's too, and a result without every objective saves nothing
    assert values_at(done, 1) == [0.3, 9.0] and values_at(done, 2) == [0.6, 9.0]
    assert values_at(stopped, 1) == [0.1, 5.0]
    partial = run_several(searcher, "c", [{"val_acc": 0.4}, {"val_acc": 0.5, "params": 3.0}])
    assert values_at(partial, 1) is None and values_at(partial, 2) == [0.5, 3.0]


def test_the_last_epoch_of_a_trial_is_saved_when_it_is_told_whatever_results_came_before():
    searcher = make_several()
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"epoch": 2, "val_acc": 0.7, "params": 4.0})
    done = searcher._ot_study.trials[-1]
    assert done.values == [0.7, 4.0] and values_at(done, 2) == [0.7, 4.0]


@pytest.mark.parametrize("bound, params, violation", [
    ({"side": "max", "bound": 10.0}, 9.0, -1.0),   # holds
    ({"side": "max", "bound": 10.0}, 12.0, 2.0),   # broken by 2
    ({"side": "min", "bound": 10.0}, 12.0, -2.0),  # a lower bound holds
    ({"side": "max", "bound": 10.0}, math.nan, math.inf),  # no value breaks it
])
def test_each_constraint_is_told_to_optuna_as_its_violation(bound, params, violation):
    searcher = make_several(constraints=[("params", bound["side"], bound["bound"])])
    told = run_several(searcher, "a", [{"val_acc": 0.5, "params": params}])
    key = "params<=10" if bound["side"] == "max" else "params>=10"
    assert told.constraints == {key: violation}


def test_a_constrained_sampler_learns_feasibility_from_the_told_constraints():
    """NSGA-II ranks a feasible trial above an infeasible one whatever their values: the
    constraint values set on the trial reach the sampler (Optuna >= 5 reads them there)."""
    from optuna.samplers.nsgaii._constraints_evaluation import _evaluate_penalty

    searcher = make_several(constraints=[("params", "max", 10.0)],
                            sampler=SAMPLERS["nsga2"](_sampler_spec("nsga2")))
    run_several(searcher, "a", [{"val_acc": 0.9, "params": 50.0}])
    run_several(searcher, "b", [{"val_acc": 0.2, "params": 5.0}])
    penalties = list(_evaluate_penalty(searcher._ot_study.trials))
    assert penalties == [40.0, 0.0]


def _sampler_spec(kind):
    from pydantic import TypeAdapter

    from search.spec.model import Sampler
    return TypeAdapter(Sampler).validate_python({"type": kind, "seed": 0})
