"""BOHB's model as an Optuna sampler (search/engine/rung_sampler.py): its pure rules as tables,
and, on a real Optuna study, that it learns at the highest budget with enough results, not at
the first rung (where TPE over ASHA learns what starts well), and draws its random share."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.engine.rung_sampler import (BOHBSampler, at_budget, model_budget, value_at,
                                        values_at, values_key)

X = {"x": FloatDistribution(0.0, 1.0)}


def trial(values: dict[int, float], state=TrialState.PRUNED, value=None, x=0.5, number=0):
    made = create_trial(state=state, value=value, params={"x": x}, distributions=X,
                        intermediate_values=values)
    made.number = number
    return made


@pytest.mark.parametrize("made, budget, expected", [
    (trial({1: 0.2, 3: 0.4}), 3, 0.4),
    (trial({1: 0.2, 3: 0.4}), 9, None),  # never got there
    (trial({1: 0.2}, TrialState.COMPLETE, 0.7), 1, 0.2),  # its value at that epoch
    (trial({1: 0.2, 9: 0.7}, TrialState.COMPLETE, 0.7), 9, 0.7),
    (trial({1: math.nan}), 1, None),  # a non-finite result is no result
    (trial({}, TrialState.RUNNING), 1, None),
])
def test_a_trials_result_at_a_budget(made, budget, expected):
    assert value_at(made, budget) == expected


@pytest.mark.parametrize("results, budgets, min_points, expected", [
    ([{1: 0.1}] * 3, [1, 3, 9], 3, 1),
    ([{1: 0.1}] * 2, [1, 3, 9], 3, None),  # no budget has enough yet
    ([{1: 0.1, 3: 0.2}] * 3 + [{1: 0.1}] * 5, [1, 3, 9], 3, 3),  # the highest with enough
    ([{1: 0.1, 3: 0.2}] * 2 + [{1: 0.1}] * 5, [1, 3, 9], 3, 1),
    ([{1: 0.1, 3: 0.2, 9: 0.3}] * 4, [9, 1, 3], 4, 9),  # budgets in any order
])
def test_the_model_budget_is_the_highest_with_enough_results(results, budgets, min_points,
                                                             expected):
    trials = [trial(values, number=n) for n, values in enumerate(results)]
    assert model_budget(trials, budgets, min_points) == expected


def test_the_model_sees_a_trial_complete_with_its_result_at_the_budget_or_running():
    seen = at_budget(trial({1: 0.2, 3: 0.4}, x=0.3, number=5), 1)
    assert (seen.state, seen.value, seen.params, seen.number) == (TrialState.COMPLETE, 0.2,
                                                                   {"x": 0.3}, 5)
    assert at_budget(trial({}, TrialState.RUNNING), 3).state == TrialState.RUNNING
    assert at_budget(trial({1: 0.2}), 3) is None  # stopped before it: not in the model


def study_where_early_and_late_disagree(late: int) -> optuna.Study:
    """40 trials over x in [0, 1]: at epoch 1 a larger x is better; `late` of them (spread over
    x) also ran to epoch 9, where a smaller x is better."""
    study = optuna.create_study(direction="maximize")
    for n in range(40):
        x = (n + 0.5) / 40
        values = {1: x}
        if n % (40 // late) == 0:
            values[9] = 1.0 - x
        study.add_trial(trial(values, x=x))
    return study


def proposals(sampler: BOHBSampler, study: optuna.Study, n: int = 30) -> list[float]:
    found = []
    for _ in range(n):
        asked = study.ask(X)
        found.append(asked.params["x"])
        study.tell(asked, state=TrialState.FAIL)  # (not a result: the model never sees it)
    return found


def bohb(**kwargs) -> BOHBSampler:
    sampler = BOHBSampler(**{"seed": 0, "random_fraction": 0.0, "min_points": 5,
                             "multivariate": False, "constant_liar": False,
                             "n_ei_candidates": 24, **kwargs})
    sampler.fit_budgets([1, 3, 9], dims=1)
    return sampler


@pytest.mark.parametrize("late, learns_small_x", [(8, True), (4, False)])
def test_the_model_learns_at_the_highest_budget_with_enough_results(late, learns_small_x):
    """8 trials at epoch 9 (>= min_points 5): it learns that a small x is best at the budget;
    with 4 it falls back to epoch 1, where a large x looks best."""
    study = study_where_early_and_late_disagree(late)
    study.sampler = bohb()
    found = proposals(study.sampler, study)
    median = sorted(found)[len(found) // 2]
    assert (median < 0.3) if learns_small_x else (median > 0.7), found


def test_a_random_share_of_one_proposes_at_random_whatever_the_results():
    study = study_where_early_and_late_disagree(8)
    study.sampler = bohb(random_fraction=1.0)
    found = proposals(study.sampler, study, n=40)
    assert 0.3 < sorted(found)[len(found) // 2] < 0.7
    assert min(found) < 0.2 and max(found) > 0.8


def test_min_points_defaults_to_one_more_than_the_parameters():
    sampler = BOHBSampler(seed=0, random_fraction=0.0, min_points=None, multivariate=True,
                          constant_liar=True, n_ei_candidates=24)
    sampler.fit_budgets([3, 1, 3], dims=7)
    assert (sampler.min_points, sampler.budgets) == (8, [1, 3])


# --- several objectives: each epoch's values saved as a user attribute by the searcher ------

def several(at: dict[int, list], state=TrialState.PRUNED, values=None, x=0.5, number=0):
    made = create_trial(state=state, values=values, params={"x": x}, distributions=X,
                        user_attrs={values_key(e): v for e, v in at.items()})
    made.number = number
    return made


@pytest.mark.parametrize("made, budget, expected", [
    (several({1: [0.2, 5.0], 3: [0.4, 15.0]}), 3, [0.4, 15.0]),
    (several({1: [0.2, 5.0]}), 3, None),  # never got there
    (several({1: [0.2, 5.0], 2: [0.5, 10.0]}, TrialState.COMPLETE, [0.5, 10.0]), 2,
     [0.5, 10.0]),
    (several({1: [0.2, 5.0]}, TrialState.COMPLETE, [0.5, 10.0]), 2, None),  # saved per epoch
    (several({1: [math.inf, 5.0]}), 1, None),  # a non-finite value is no result
    (several({}, TrialState.RUNNING), 1, None),
])
def test_a_trials_values_of_several_objectives_at_a_budget(made, budget, expected):
    assert values_at(made, budget) == expected


def test_one_objective_reads_the_same_through_values_at():
    assert values_at(trial({1: 0.2, 3: 0.4}), 3) == [0.4]
    assert values_at(trial({1: 0.2}), 3) is None


def test_the_model_of_several_objectives_learns_from_trials_stopped_at_a_rung():
    """40 trials paused or stopped at epoch 1 (MO-ASHA's first rung), none complete: at that
    rung accuracy rises with x and the cost falls with it, so a larger x dominates. Plain
    multi-objective TPE sees no trial (none COMPLETE) and proposes at random; the rung model
    proposes large x."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for n in range(40):
        x = (n + 0.5) / 40
        study.add_trial(several({1: [x, 1.0 - x]}, x=x, number=n))
    study.sampler = bohb()
    found = proposals(study.sampler, study)
    assert sorted(found)[len(found) // 2] > 0.7, found
    seen = at_budget(study.trials[3], 1)
    assert (seen.state, seen.values) == (TrialState.COMPLETE, [3.5 / 40, 1 - 3.5 / 40])
