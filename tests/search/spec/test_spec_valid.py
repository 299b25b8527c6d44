"""Valid specs: realistic files parse, defaults fill in, trials get the right TrainConfig."""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap

import pytest

from resnet_core.config import DataConfig, TrainConfig, knob_of
from search.spec import schema as trial_schema
from search.spec.problems import SpecError
from search.spec.model import (ChoiceParam, FloatParam, IntParam, gpu_problem, load_spec, parse_spec,
                         experiment_name_problem, several_sampler)

FULL = textwrap.dedent("""\
    name: cifar10-resnet
    data: {dataset: cifar10, root: ~/.cache/resnet-search, download: true, val_fraction: 0.1}
    objective: {metric: val_acc, mode: max}
    budget: {trials: 64, max_epochs: 30}
    trial: {resources: {cpu: 2, gpu: 0.25}, max_failures: 2}
    sampler: {type: tpe, seed: 0, n_startup_trials: 10, multivariate: true}
    scheduler: {type: asha, grace_period: 2, reduction_factor: 3}
    fixed: {batch_size: 512, optimizer: sgd, milestones: [0.3, 0.6]}
    space:
      block:          {choice: [basic, bottleneck, preact, dynamic]}
      depth:          {choice: [18, 34]}
      residual:       {choice: [add, scaled, normalized, fusion]}
      residual_scale: {float: [0.1, 1.0], when: {residual: scaled}}
      lr:             {float: [1e-4, 1e-1], log: true}
      schedule:       {choice: [step, cosine, onecycle]}
      gamma:          {float: [0.05, 0.5], when: {schedule: [step]}}
      augment:        {float: [0.0, 1.0], step: 0.25}
      crop_padding:   {int: [0, 8], step: 2}
    tracking: {mlflow_uri: sqlite:///mlflow.db}
""")
MINIMAL = {"name": "m", "data": {"dataset": "synthetic"}, "budget": {"trials": 1, "max_epochs": 5}}


@pytest.fixture
def full(tmp_path):
    path = tmp_path / "cifar.yaml"
    path.write_text(FULL)
    return load_spec(path)


def test_realistic_full_spec_parses(full):
    assert full.name == "cifar10-resnet" and full.budget.trials == 64
    assert full.trial.resources.gpu == 0.25 and full.scheduler.grace_period == 2
    assert list(full.space) == ["block", "depth", "residual", "residual_scale", "lr", "schedule",
                                "gamma", "augment", "crop_padding"]
    assert full.source.endswith("cifar.yaml")


def test_scientific_notation_log_range(full):
    lr = full.space["lr"]
    assert isinstance(lr, FloatParam) and (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True)


@pytest.mark.parametrize("name, cls, kind, fields", [
    ("depth", ChoiceParam, "choice", {"choices": [18, 34]}),
    ("residual_scale", FloatParam, "float", {"low": 0.1, "high": 1.0, "log": False,
                                             "step": None}),
    ("augment", FloatParam, "float", {"step": 0.25}),
    ("crop_padding", IntParam, "int", {"low": 0, "high": 8, "step": 2, "log": False}),
])
def test_param_accessors(full, name, cls, kind, fields):
    param = full.space[name]
    assert isinstance(param, cls) and param.kind == kind
    assert {k: getattr(param, k) for k in fields} == fields


@pytest.mark.parametrize("name, when", [
    ("residual_scale", {"residual": ["scaled"]}),   # a scalar becomes a one-element list
    ("gamma", {"schedule": ["step"]}),
    ("lr", {}),
])
def test_when_is_normalised(full, name, when):
    assert full.space[name].when == when


def test_defaults_fill_in():
    spec = parse_spec(MINIMAL)
    assert (spec.objective.metric, spec.objective.mode, spec.objective.sign) == ("val_acc", "max", 1)
    assert spec.sampler.type == "tpe" and spec.sampler.seed == 0
    assert spec.sampler.n_startup_trials == 10 and spec.sampler.multivariate
    assert spec.sampler.constant_liar and spec.sampler.stopped_trials == "pruned"
    assert spec.scheduler.type == "promotion_asha"  # bench/README.md §9, phase 3
    assert (spec.scheduler.grace_period, spec.scheduler.reduction_factor) == (1, 3.0)
    assert (spec.trial.resources.cpu, spec.trial.resources.gpu) == (1.0, 0.0)
    assert spec.trial.max_concurrent is None and spec.trial.max_failures == 2
    assert spec.budget.time_limit_s is None
    assert spec.tracking.mlflow_uri == "sqlite:///mlflow.db" and spec.tracking.experiment is None
    assert spec.storage_path == "runs" and spec.fixed == {} and spec.space == {}


@pytest.mark.parametrize("field", dataclasses.fields(DataConfig), ids=lambda f: f.name)
def test_data_defaults_come_from_data_config(field):
    spec = parse_spec({**MINIMAL, "data": {}})
    assert getattr(spec.data, field.name) == field.default
    assert spec.data_config() == DataConfig()


def test_data_config_carries_the_section():
    spec = parse_spec({**MINIMAL, "data": {"dataset": "digits", "subset": 500,
                                           "image_size": 32}})
    assert spec.data_config() == DataConfig(dataset="digits", subset=500, image_size=32)


def test_empty_fixed_and_space_sections_are_empty():
    spec = parse_spec({**MINIMAL, "fixed": None, "space": None})
    assert spec.fixed == {} and spec.space == {}


def test_min_mode_flips_the_sign():
    spec = parse_spec({**MINIMAL, "objective": {"metric": "val_loss", "mode": "min"}})
    assert spec.objective.sign == -1


@pytest.mark.parametrize("metric", ["params", "flops", "latency_ms", "train_seconds"])
def test_what_a_trial_costs_is_an_objective_to_minimise(metric):
    # Every trial reports these from its first epoch on (resnet_core/train/cost.py).
    spec = parse_spec({**MINIMAL, "objective": {"metric": metric, "mode": "min"}})
    assert (spec.objective.metric, spec.objective.sign) == (metric, -1)
    assert (spec.job().metric, spec.job().worst()) == (metric, math.inf)  # a failed trial: worst


@pytest.mark.parametrize("sampler", [
    {"type": "tpe", "constant_liar": False}, {"type": "gp", "seed": None},
    {"type": "cmaes", "sigma0": 0.5}, {"type": "random", "seed": 7},
    {"type": "qmc", "qmc_type": "halton", "scramble": False},
    {"type": "tpe", "stopped_trials": "complete"},
])
def test_every_sampler_parses(sampler):
    spec = parse_spec({**MINIMAL, "sampler": sampler})
    assert spec.sampler.model_dump(include=set(sampler)) == sampler


def test_fifo_scheduler_ignores_grace_rules():
    spec = parse_spec({**MINIMAL, "scheduler": {"type": "fifo"}})
    assert spec.scheduler.type == "fifo"


def test_train_config_merges_fixed_params_and_budget(full):
    cfg = full.job().train_config({"lr": 0.01, "block": "preact", "residual": "scaled",
                             "residual_scale": 0.5})
    assert isinstance(cfg, TrainConfig)
    assert (cfg.lr, cfg.block, cfg.residual, cfg.residual_scale) == (0.01, "preact", "scaled", 0.5)
    assert (cfg.batch_size, cfg.optimizer, cfg.epochs) == (512, "sgd", 30)
    assert cfg.milestones == (0.3, 0.6)  # lists from YAML become the field's tuple
    assert cfg.momentum == TrainConfig().momentum


def test_params_override_fixed_and_ints_become_floats():
    spec = parse_spec({**MINIMAL, "fixed": {"lr": 1, "batch_size": 64}})
    assert spec.fixed["lr"] == 1.0 and type(spec.fixed["lr"]) is float
    cfg = spec.job().train_config({"batch_size": 32})
    assert cfg.batch_size == 32 and type(cfg.lr) is float


@pytest.mark.parametrize("params, fragment", [
    ({"lr_rate": 0.1}, "unknown training field 'lr_rate'"),
    ({"lr": -1.0}, "lr is -1.0 but must be > 0"),
    ({"block": "nope"}, "block is 'nope' but must be one of"),
])
def test_train_config_rejects_bad_params(params, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_spec(MINIMAL).job().train_config(params)


def test_conditional_param_gets_the_field_default_when_inactive(full):
    cfg = full.job().train_config({"residual": "add"})
    assert cfg.residual_scale == TrainConfig().residual_scale


def test_with_overrides_is_a_revalidated_copy(full):
    other = full.with_overrides(trials=5, max_epochs=4, seed=9)
    assert (other.budget.trials, other.budget.max_epochs) == (5, 4)
    assert other.sampler.seed == 9 and other.fixed["seed"] == 9
    assert other.job().train_config({}).seed == 9 and other.job().train_config({}).epochs == 4
    assert full.budget.trials == 64 and "seed" not in full.fixed and full.sampler.seed == 0
    assert other.space == full.space and other.source == full.source
    with pytest.raises(SpecError, match="scheduler.grace_period: grace_period is 2"):
        full.with_overrides(max_epochs=1)


def test_seed_override_without_a_sampler_section():
    spec = parse_spec(MINIMAL).with_overrides(seed=3)
    assert spec.sampler.type == "tpe" and spec.sampler.seed == 3 and spec.fixed == {"seed": 3}


def test_load_spec_applies_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(FULL)
    spec = load_spec(path, trials=2, max_epochs=3, seed=1)
    assert (spec.budget.trials, spec.budget.max_epochs, spec.sampler.seed) == (2, 3, 1)


def test_resolved_is_json_safe_and_round_trips(full):
    resolved = full.resolved()
    text = json.dumps(resolved)
    assert resolved["space"]["lr"] == {"float": [1e-4, 1e-1], "log": True, "step": None,
                                       "when": {}}
    assert resolved["sampler"]["n_startup_trials"] == 10  # defaults are filled
    again = parse_spec(json.loads(text))
    assert again.resolved() == resolved and again.spec_hash() == full.spec_hash()


def test_spec_hash_is_short_stable_and_sensitive(full):
    digest = full.spec_hash()
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert full.with_overrides().spec_hash() == digest
    assert full.with_overrides(trials=65).spec_hash() != digest


def test_written_defaults_hash_like_omitted_ones():
    explicit = {**MINIMAL, "sampler": {"type": "tpe", "seed": 0}, "fixed": {"lr": 1}}
    implicit = {**MINIMAL, "fixed": {"lr": 1.0}}
    assert parse_spec(explicit).spec_hash() == parse_spec(implicit).spec_hash()


@pytest.mark.parametrize("field", ["block", "residual", "stem", "shortcut", "optimizer",
                                   "schedule", "depth", "residual_target", "precision"])
def test_every_registry_entry_is_accepted(field):
    allowed = knob_of(trial_schema.fields_of(TrainConfig)[field]).allowed()
    spec = parse_spec({**MINIMAL, "space": {field: {"choice": allowed}}})
    assert spec.space[field].choices == allowed
    for value in allowed:
        assert getattr(spec.job().train_config({field: value}), field) == value


@pytest.mark.parametrize("dataset", knob_of(
    trial_schema.fields_of(DataConfig)["dataset"]).allowed())
def test_every_dataset_is_accepted(dataset):
    assert parse_spec({**MINIMAL, "data": {"dataset": dataset}}).data.dataset == dataset


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TrainConfig)
                                  if f.name != "epochs"])
def test_every_field_default_is_a_valid_fixed_value(name):
    default = getattr(TrainConfig(), name)
    spec = parse_spec({**MINIMAL, "fixed": {name: default}})
    assert getattr(spec.job().train_config({}), name) == default


@pytest.mark.parametrize("gpu", [0, 0.0, 1, 2, 8, 0.5, 0.25, 0.2, 0.125, 1 / 3, 0.33, 1 / 7])
def test_gpu_fractions_that_pack(gpu):
    assert gpu_problem(gpu) is None
    assert parse_spec({**MINIMAL, "trial": {"resources": {"gpu": gpu}}}).trial.resources.gpu == gpu


@pytest.mark.parametrize("gpu", [0.3, 0.34, 0.6, 0.75, 1.5, 2.5])
def test_gpu_fractions_that_waste(gpu):
    assert "1/k" in gpu_problem(gpu)


@pytest.mark.parametrize("name", ["cifar10-resnet", "run_1.2", "A", "x" * 100, "2024.01.exp"])
def test_good_names(name):
    assert experiment_name_problem(name) is None


def test_tracking_experiment_and_uri():
    spec = parse_spec({**MINIMAL, "tracking": {"mlflow_uri": "http://127.0.0.1:5000",
                                               "experiment": "shared"}})
    assert (spec.tracking.mlflow_uri, spec.tracking.experiment) == ("http://127.0.0.1:5000",
                                                                    "shared")


def test_the_spec_hash_leaves_a_tracking_uris_secret_out():
    """The record keeps the URI masked, so a rotated password must not read as a changed
    search; another store still does."""
    def spec(uri: str):
        return parse_spec({"name": "t", "data": {"dataset": "synthetic"},
                           "budget": {"trials": 1, "max_epochs": 2},
                           "tracking": {"mlflow_uri": uri}})

    old = spec("postgresql://db:5432/mlflow?user=u&password=old")
    assert spec("postgresql://db:5432/mlflow?user=u&password=new").spec_hash() == old.spec_hash()
    assert spec("postgresql://db2:5432/mlflow?user=u&password=old").spec_hash() != \
        old.spec_hash()
    assert old.resolved()["tracking"]["mlflow_uri"].endswith("password=old")  # kept in memory


# --- several objectives and constraints ---------------------------------------------------------

SEVERAL = [{"metric": "val_acc", "mode": "max"}, {"metric": "params", "mode": "min"}]


def test_one_objective_keeps_its_resolved_form_and_hash():
    """A spec written before lists existed is the same search: its mapping, its hash."""
    one = parse_spec(MINIMAL)
    listed = parse_spec({**MINIMAL, "objective": [{"metric": "val_acc", "mode": "max"}]})
    assert one.resolved()["objective"] == {"metric": "val_acc", "mode": "max"}
    assert "constraints" not in one.resolved()
    assert listed.spec_hash() == one.spec_hash() and listed.objective_pairs == ()
    assert one.job().objectives == () and one.job().all_objectives == (("val_acc", "max"),)


def test_several_objectives_the_first_the_primary():
    spec = parse_spec({**MINIMAL, "objective": SEVERAL,
                       "constraints": [{"metric": "latency_ms", "max": 2.5},
                                       {"metric": "val_acc", "min": 0.5}]})
    assert (spec.objective.metric, spec.objective.mode) == ("val_acc", "max")
    assert spec.objective_pairs == (("val_acc", "max"), ("params", "min"))
    job = spec.job()
    assert job.metric == "val_acc" and job.objectives == spec.objective_pairs
    assert job.constraints == (("latency_ms", "max", 2.5), ("val_acc", "min", 0.5))
    resolved = spec.resolved()
    assert resolved["objective"] == SEVERAL
    assert resolved["constraints"] == [{"metric": "latency_ms", "max": 2.5},
                                       {"metric": "val_acc", "min": 0.5}]
    again = parse_spec(json.loads(json.dumps(resolved)))  # the record's copy parses back
    assert again.spec_hash() == spec.spec_hash() and again.job() == job
    assert spec.with_overrides(max_epochs=3).objective_pairs == spec.objective_pairs
    assert parse_spec({**MINIMAL, "objective": SEVERAL[::-1]}).spec_hash() != spec.spec_hash()


@pytest.mark.parametrize("scheduler, max_epochs, expected", [
    ("promotion_asha", 6, "bohb"), ("asha", 2, "bohb"),
    ("fifo", 6, "tpe"),  # one result per trial: no rung to learn from
    ("promotion_asha", 1, "tpe"),
])
def test_several_objectives_without_a_sampler_get_bohb_only_where_there_are_rungs(
        scheduler, max_epochs, expected):
    assert several_sampler(scheduler, max_epochs) == expected
    raw = {**MINIMAL, "objective": SEVERAL, "scheduler": {"type": scheduler},
           "budget": {**MINIMAL["budget"], "max_epochs": max_epochs}}
    assert parse_spec(raw).sampler.type == expected
    assert parse_spec({**raw, "sampler": {"type": "nsga2"}}).sampler.type == "nsga2"


def test_several_objectives_without_a_scheduler_get_the_default_schedulers_sampler():
    spec = parse_spec({**MINIMAL, "objective": SEVERAL})
    assert spec.sampler.type == several_sampler(spec.scheduler.type, spec.budget.max_epochs)
    assert parse_spec(MINIMAL).sampler.type == "tpe"  # one objective: as ever


@pytest.mark.parametrize("sampler", ["tpe", "gp", "random", "qmc", "nsga2", "nsga3"])
def test_every_sampler_for_several_objectives_parses(sampler):
    spec = parse_spec({**MINIMAL, "objective": SEVERAL, "sampler": {"type": sampler}})
    assert spec.sampler.several_objectives


@pytest.mark.parametrize("changes, measured", [
    ({}, False),
    ({"objective": {"metric": "latency_ms", "mode": "min"}}, True),
    ({"objective": SEVERAL + [{"metric": "latency_ms", "mode": "min"}]}, True),
    ({"constraints": [{"metric": "latency_ms", "max": 3.0}]}, True),
    ({"objective": SEVERAL, "constraints": [{"metric": "flops", "max": 1e9}]}, False),
])
def test_a_trial_times_its_latency_only_when_an_objective_or_constraint_reads_it(changes,
                                                                                 measured):
    assert parse_spec({**MINIMAL, **changes}).job().reads("latency_ms") is measured
