"""Which of Optuna's plots a study can have, and which parameters get sliced."""

from __future__ import annotations

import pytest

from search.engine import study as studies
from search.report import optuna_plots as plots
from search.report.optuna_plots import Facts

TWO = ("lr", "weight_decay")


@pytest.mark.parametrize("plot, found, reason", [
    (plots.HISTORY, Facts(5, 1, (), ("lr",)), None),
    (plots.PARALLEL, Facts(5, 1, ("lr",), ("lr",)), None),
    (plots.SLICE, Facts(5, 1, ("lr",), ("lr",)), None),
    (plots.IMPORTANCES, Facts(5, 2, TWO, TWO), None),
    # no trial has a value: no Optuna plot at all
    (plots.HISTORY, Facts(5, 0, (), ()), "no trial of 5 has reported a finite value"),
    (plots.IMPORTANCES, Facts(5, 0, (), ()), "no trial of 5 has reported a finite value"),
    (plots.SLICE, Facts(5, 0, (), ()), "no trial of 5 has reported a finite value"),
    (plots.IMPORTANCES, Facts(5, 1, TWO, TWO), "need at least 2 trials with a value at the "
                                               "epoch the plots read; this search has 1"),
    (plots.IMPORTANCES, Facts(5, 3, ("lr",), ("lr",)), "need at least 2 searched parameters; "
                                                       "only lr varies"),
    (plots.IMPORTANCES, Facts(5, 3, (), ()), "no parameter varies"),
    (plots.PARALLEL, Facts(5, 3, (), ()), "sampled no parameter"),
    (plots.SLICE, Facts(5, 3, (), ()), "sampled no parameter"),
    (plots.HISTORY, Facts(5, 3, (), ()), None),  # an empty space still has a history
])
def test_why_not(plot, found, reason):
    said = plots.why_not(plot, found)
    assert (said is None) if reason is None else (reason in said)


@pytest.mark.parametrize("ranked, found, expected", [
    ({"lr": 0.7, "wd": 0.2, "b": 0.1, "c": 0.0, "d": 0.0}, Facts(9, 3, (), ()),
     ["lr", "wd", "b"]),  # no importance, no slice
    ({"lr": 0.6, "wd": 0.2, "b": 0.1, "c": 0.1, "d": 0.0}, Facts(9, 3, (), ()),
     ["lr", "wd", "b", "c"]),  # at most TOP_PARAMS
    ({"lr": 0.0, "wd": 0.0}, Facts(9, 3, (), ()), ["lr", "wd"]),  # none mattered: all
    (None, Facts(9, 1, ("b",), ("b", "a", "c", "d", "e")), ["b", "a", "c", "d"]),
])
def test_top_params(ranked, found, expected):
    assert plots.top_params(ranked, found) == expected


def test_facts_of_a_study_count_the_completed_trials_and_their_common_space(record):
    experiment = record()
    results = experiment.recorded_results()
    study = studies.build(results, experiment.saved_spec())
    found = plots.facts(study)
    assert found.trials == len(results.trials)
    assert found.completed == sum(t.outcome.value == "completed" for t in results.trials)
    # residual_scale exists only in the scaled trials: sampled, but not common to all (named as
    # the trials first sample them, each in the order of the record's spec.json: a launch writes
    # it with sorted keys)
    assert found.sampled == ("lr", "residual", "weight_decay", "residual_scale")
    assert found.varying == ("lr", "residual", "weight_decay")


def test_importances_are_seeded(record):
    experiment = record()
    study = studies.build(experiment.recorded_results(), experiment.saved_spec())
    found = plots.facts(study)
    first = plots.importances(study, found)
    assert first == plots.importances(study, found)
    assert set(first) == set(found.varying) and abs(sum(first.values()) - 1.0) < 1e-6
