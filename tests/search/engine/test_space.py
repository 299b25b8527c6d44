"""The validated space compiled to Optuna define-by-run: properties over many real samples."""

import optuna
import pytest

from search.engine.space import DefineByRun, sample
from search.spec.points import active, order
from search.spec.params import describe
from search.spec.model import parse_spec

BASE = {"name": "space-test", "data": {"dataset": "digits"},
        "budget": {"trials": 4, "max_epochs": 3}}


def spec_with(space):
    return parse_spec({**BASE, "space": space})


SPACE = {
    "lr": {"float": [1e-4, 1e-1], "log": True},
    "depth": {"choice": [20, 32, 56]},
    "batch_size": {"int": [32, 256], "step": 32},
    "schedule": {"choice": ["step", "cosine", "multistep"]},
    "gamma": {"float": [0.05, 0.5], "when": {"schedule": "step"}},
    "step_size": {"float": [1.0, 5.0], "when": {"schedule": ["step"]}},
    "milestones": {"choice": [[0.5, 0.75], [0.3, 0.6, 0.9]], "when": {"schedule": "multistep"}},
    "residual": {"choice": ["add", "scaled"]},
    "residual_learnable": {"choice": [True, False], "when": {"residual": "scaled"}},
    # a condition on a conditional parameter: exists only for learnable scaled merges
    "residual_scale": {"float": [0.0, 1.0], "when": {"residual_learnable": True}},
}


@pytest.fixture(scope="module")
def samples():
    spec = spec_with(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(200):
        trial = study.ask()
        out.append(sample(spec.space, trial))
        study.tell(trial, 0.0)
    return out


def test_conditional_parameters_appear_exactly_under_their_condition(samples):
    for params in samples:
        assert ("gamma" in params) == (params["schedule"] == "step")
        assert ("step_size" in params) == (params["schedule"] == "step")
        assert ("milestones" in params) == (params["schedule"] == "multistep")
        assert ("residual_learnable" in params) == (params["residual"] == "scaled")
        assert ("residual_scale" in params) == (params.get("residual_learnable") is True)


def test_every_branch_of_every_condition_is_explored(samples):
    assert {p["schedule"] for p in samples} == {"step", "cosine", "multistep"}
    assert any("residual_scale" in p for p in samples)


def test_values_respect_bounds_steps_and_choices(samples):
    for params in samples:
        assert 1e-4 <= params["lr"] <= 1e-1
        assert params["depth"] in (20, 32, 56)
        assert 32 <= params["batch_size"] <= 256 and params["batch_size"] % 32 == 0
        if "gamma" in params:
            assert 0.05 <= params["gamma"] <= 0.5
        if "milestones" in params:
            assert params["milestones"] in ([0.5, 0.75], [0.3, 0.6, 0.9])


def test_log_scale_samples_cover_decades(samples):
    decades = {int(f"{p['lr']:e}".split("e")[1]) for p in samples}
    assert decades >= {-4, -3, -2}


def test_every_sample_is_a_valid_trial_config(samples):
    spec = spec_with(SPACE)
    for params in samples[:20]:
        cfg = spec.job().train_config(params)
        assert cfg.epochs == 3
        for name, value in params.items():
            assert getattr(cfg, name) in (value, tuple(value) if isinstance(value, list) else value)


def test_parents_come_before_children():
    names = order(spec_with(SPACE).space)
    assert names.index("schedule") < names.index("gamma")
    assert names.index("residual") < names.index("residual_learnable") < names.index(
        "residual_scale")


@pytest.mark.parametrize("when, params, expected", [
    ({}, {}, True),
    ({"a": ["x"]}, {"a": "x"}, True),
    ({"a": ["x"]}, {"a": "y"}, False),
    ({"a": ["x"]}, {}, False),  # parent absent (itself inactive) -> child inactive
    ({"a": ["x"], "b": [1, 2]}, {"a": "x", "b": 2}, True),
    ({"a": ["x"], "b": [1, 2]}, {"a": "x", "b": 3}, False),
])
def test_active_rule(when, params, expected):
    assert active(when, params) is expected


def test_define_by_run_survives_pickling_like_tune_does():
    import pickle

    define = DefineByRun(spec_with(SPACE).space)
    restored = pickle.loads(pickle.dumps(define))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(lambda t: restored(t) or 0.0, n_trials=3)
    assert all("lr" in t.params for t in study.trials)


def test_describe_names_ranges_and_conditions():
    space = spec_with(SPACE).space
    assert describe(space["lr"]) == "float [0.0001, 0.1] log"
    assert "only when schedule = step" in describe(space["gamma"])
    assert describe(space["batch_size"]) == "int [32, 256] step 32"
