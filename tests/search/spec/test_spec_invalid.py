"""Bad specs: each is rejected with a SpecError naming the dotted field, the value and the rule.

Cases are patches on a small valid spec (DELETE removes a key); `fragments` must all appear in
the message of the problem at `loc`.
"""

from __future__ import annotations

import copy
import math
import pickle
import textwrap

import pytest

from search.spec.problems import SpecError
from search.spec.model import database_path_problem, load_spec, parse_spec
from search.spec.params import choice_problems, cycle_problems, range_problems, when_problems
from search.spec.schedulers import SCHEDULERS

DELETE = object()
BASE = {
    "name": "t",
    "data": {"dataset": "synthetic"},
    "budget": {"trials": 4, "max_epochs": 6},
    "space": {
        "lr": {"float": [1e-3, 1e-1], "log": True},
        "residual": {"choice": ["add", "scaled"]},
        "residual_scale": {"float": [0.1, 1.0], "when": {"residual": "scaled"}},
    },
}


def patched(patch: dict, base: dict = BASE) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = patched(value, out[key])
        else:
            out[key] = value
    return out


def space(**params) -> dict:
    return {"space": params}


CASES = [
    # unknown keys at any depth, with did-you-mean or the list of valid keys
    ("top-typo", {"sampeler": {"type": "tpe"}}, "sampeler",
     ["'sampeler'", "did you mean 'sampler'"]),
    ("nested-typo", {"scheduler": {"type": "asha", "grace_priod": 2}}, "scheduler.grace_priod",
     ["'grace_priod'", "did you mean 'grace_period'"]),
    ("deep-typo", {"trial": {"resources": {"gpus": 1}}}, "trial.resources.gpus",
     ["'gpus'", "did you mean 'gpu'"]),
    ("sampler-typo", {"sampler": {"type": "tpe", "n_startup": 3}}, "sampler.n_startup",
     ["'n_startup'", "did you mean 'n_startup_trials'"]),
    ("no-close-match", {"budget": {"zzz": 1}}, "budget.zzz",
     ["'zzz'", "valid keys: trials, max_epochs, time_limit_s"]),
    ("param-typo", space(lr={"float": [0.01, 0.1], "lg": True}), "space.lr.lg",
     ["'lg'", "did you mean 'log'"]),
    ("data-typo", {"data": {"downlaod": True}}, "data.downlaod", ["did you mean 'download'"]),
    ("field-typo", {"fixed": {"optimzer": "sgd"}}, "fixed.optimzer",
     ["'optimzer'", "did you mean 'optimizer'"]),
    ("space-field-typo", space(weight_decy={"float": [1e-5, 1e-3]}), "space.weight_decy",
     ["'weight_decy'", "did you mean 'weight_decay'"]),
    # missing sections, wrong shapes
    ("no-name", {"name": DELETE}, "name", ["name is required"]),
    ("no-budget", {"budget": DELETE}, "budget", ["budget is required"]),
    ("no-data", {"data": DELETE}, "data", ["data is required"]),
    ("no-trials", {"budget": {"trials": DELETE}}, "budget.trials", ["trials is required"]),
    ("budget-list", {"budget": [4, 6]}, "budget", ["[4, 6]", "must be a mapping"]),
    ("trial-scalar", {"trial": 3}, "trial", ["3", "must be a mapping"]),
    ("sampler-scalar", {"sampler": "tpe"}, "sampler", ["'tpe'", "must be a mapping"]),
    ("space-list", {"space": ["lr"]}, "space", ["['lr']", "must be a mapping"]),
    ("fixed-list", {"fixed": [1]}, "fixed", ["[1]", "must be a mapping"]),
    ("param-scalar", space(lr=0.1), "space.lr", ["0.1", "must be a mapping", "fixed"]),
    # distributions
    ("float-low>=high", space(lr={"float": [0.1, 0.01]}), "space.lr.float",
     ["[0.1, 0.01]", "low >= high"]),
    ("float-low==high", space(lr={"float": [0.1, 0.1]}), "space.lr.float", ["low >= high"]),
    ("int-low>=high", space(seed={"int": [5, 2]}), "space.seed.int", ["[5, 2]", "low >= high"]),
    ("log-low-zero", space(lr={"float": [0.0, 0.1], "log": True}), "space.lr.log",
     ["0.0", "low > 0"]),
    ("log-int-zero", space(seed={"int": [0, 8], "log": True}), "space.seed.log",
     ["[0, 8]", "low >= 1"]),
    ("int-float-bound", space(seed={"int": [0.5, 4]}), "space.seed.int[0]",
     ["0.5", "must be an integer"]),
    ("int-float-step", space(seed={"int": [0, 4], "step": 0.5}), "space.seed.step",
     ["0.5", "must be an integer"]),
    ("int-step-misfit", space(seed={"int": [0, 10], "step": 3}), "space.seed.step",
     ["3", "does not divide", "[0, 10]"]),
    ("float-step-misfit", space(augment={"float": [0.0, 1.0], "step": 0.3}),
     "space.augment.step", ["0.3", "does not divide"]),
    ("step-zero", space(augment={"float": [0.0, 1.0], "step": 0}), "space.augment.step",
     ["0", "> 0"]),
    ("step-with-log", space(lr={"float": [1e-3, 1e-1], "log": True, "step": 0.01}),
     "space.lr.step", ["0.01", "log: true"]),
    ("range-one-value", space(lr={"float": [0.1]}), "space.lr.float", ["[0.1]", "[low, high]"]),
    ("range-three", space(seed={"int": [1, 2, 3]}), "space.seed.int", ["[1, 2, 3]", "[low, high]"]),
    ("range-scalar", space(lr={"float": 0.1}), "space.lr.float", ["0.1", "a list"]),
    ("choice-empty", space(block={"choice": []}), "space.block.choice",
     ["[]", "at least one value"]),
    ("choice-dup", space(block={"choice": ["basic", "basic"]}), "space.block.choice[1]",
     ["'basic'", "twice"]),
    ("choice-mapping", space(block={"choice": [{"a": 1}]}), "space.block.choice[0]",
     ["{'a': 1}", "must be a string, number"]),
    ("nan-bound", space(augment={"float": [math.nan, 1.0]}), "space.augment.float[0]",
     ["nan", "finite"]),
    ("inf-bound", space(augment={"float": [0.0, math.inf]}), "space.augment.float[1]",
     ["inf", "finite"]),
    ("unknown-kind", space(gamma={"uniform": [0.1, 0.5]}), "space.gamma",
     ["'uniform'", "float, int, choice"]),
    ("no-kind", space(gamma={"log": True}), "space.gamma", ["float, int, choice"]),
    ("two-kinds", space(gamma={"float": [0.1, 0.5], "choice": [0.1]}), "space.gamma",
     ["exactly one", "float and choice"]),
    # conditions
    ("when-unknown", space(residual_scale={"when": {"resid": "scaled"}}),
     "space.residual_scale.when.resid", ["'resid'", "not a parameter", "did you mean 'residual'"]),
    ("when-non-choice", space(residual_scale={"when": {"lr": 0.1}}),
     "space.residual_scale.when.lr", ["'lr'", "float parameter", "choice parameter"]),
    ("when-impossible", space(residual_scale={"when": {"residual": "scalde"}}),
     "space.residual_scale.when.residual[0]", ["'scalde'", "never take", "'scaled'"]),
    ("when-empty", space(residual_scale={"when": {"residual": []}}),
     "space.residual_scale.when.residual", ["[]", "at least one value"]),
    ("when-fixed", {"fixed": {"block": "basic"},
                    "space": {"residual_scale": {"when": {"block": "basic"}}}},
     "space.residual_scale.when.block", ["'block'", "fixed"]),
    ("when-self", space(residual={"when": {"residual": "add"}}), "space.residual.when.residual",
     ["'residual'", "itself", "cycle"]),
    ("when-cycle", space(residual={"when": {"block": "basic"}},
                         block={"choice": ["basic", "preact"], "when": {"residual": "add"}}),
     "space.residual.when", ["cycle", "residual -> block -> residual"]),
    # values outside the trial schema
    ("bad-block", {"fixed": {"block": "botleneck"}}, "fixed.block",
     ["'botleneck'", "must be one of", "'bottleneck'", "did you mean 'bottleneck'"]),
    ("bad-merge", space(residual={"choice": ["add", "sclaed"]}), "space.residual.choice[1]",
     ["'sclaed'", "must be one of", "'normalized'"]),
    ("bad-schedule", {"fixed": {"schedule": "cosin"}}, "fixed.schedule",
     ["'cosin'", "'onecycle'", "did you mean 'cosine'"]),
    ("bad-optimizer", space(optimizer={"choice": ["sgd", "adam"]}), "space.optimizer.choice[1]",
     ["'adam'", "'adamw'"]),
    ("bad-dataset", {"data": {"dataset": "cifar"}}, "data.dataset",
     ["'cifar'", "'cifar10'", "'digits'"]),
    ("depth-not-preset", {"fixed": {"depth": 19}}, "fixed.depth", ["19", "must be one of", "110"]),
    ("depth-int-range", space(depth={"int": [18, 34]}), "space.depth.int",
     ["19", "must be one of", "choice"]),
    ("negative-width", {"fixed": {"width": -1}}, "fixed.width", ["-1", "> 0"]),
    ("width-range", space(width={"float": [-0.5, 2.0]}), "space.width.float",
     ["-0.5", "> 0"]),
    ("batch-zero", {"fixed": {"batch_size": 0}}, "fixed.batch_size", ["0", ">= 1"]),
    ("batch-negative", space(batch_size={"choice": [128, -1]}), "space.batch_size.choice[1]",
     ["-1", ">= 1"]),
    ("epochs-fixed", {"fixed": {"epochs": 3}}, "fixed.epochs", ["'epochs'", "budget.max_epochs"]),
    ("epochs-space", space(epochs={"int": [1, 3]}), "space.epochs", ["budget.max_epochs"]),
    ("float-on-int", space(batch_size={"float": [32, 64]}), "space.batch_size.float",
     ["batch_size", "an integer", "int: [low, high]"]),
    ("float-on-str", space(block={"float": [0, 1]}), "space.block.float",
     ["block", "a string", "choice"]),
    ("int-on-bool", space(tta={"int": [0, 1]}), "space.tta.int",
     ["an int distribution", "tta", "true or false"]),
    ("lr-from-zero", space(lr={"float": [0.0, 1.0], "log": False}), "space.lr.float",
     ["0.0", "> 0"]),
    ("momentum-to-one", space(momentum={"float": [0.5, 1.0]}), "space.momentum.float",
     ["1.0", "< 1"]),
    ("choice-out-of-bounds", space(label_smoothing={"choice": [0.1, 1.5]}),
     "space.label_smoothing.choice[1]", ["1.5", "< 1"]),
    ("wrong-type-fixed", {"fixed": {"lr": "0.1"}}, "fixed.lr", ["'0.1'", "a number"]),
    ("int-field-float", {"fixed": {"batch_size": 128.0}}, "fixed.batch_size",
     ["128.0", "an integer"]),
    ("nan-fixed", {"fixed": {"lr": math.nan}}, "fixed.lr", ["nan", "finite"]),
    ("bool-yes-fixed", {"fixed": {"tta": "yes"}}, "fixed.tta", ["'yes'", "true/false"]),
    ("bool-yes-sampler", {"sampler": {"type": "tpe", "multivariate": "yes"}},
     "sampler.multivariate", ["'yes'", "true or false"]),
    ("bool-on-data", {"data": {"download": "on"}}, "data.download", ["'on'", "true or false"]),
    ("fixed-and-space", {"fixed": {"lr": 0.1}}, "space.lr", ["lr", "both in fixed and in space"]),
    ("data-bound", {"data": {"val_fraction": 1.0}}, "data.val_fraction", ["1.0", "< 1"]),
    # scheduler and objective
    ("reduction-1", {"scheduler": {"type": "asha", "reduction_factor": 1}},
     "scheduler.reduction_factor", ["reduction_factor is 1 but must be >= 2"]),
    ("grace-0", {"scheduler": {"type": "asha", "grace_period": 0}}, "scheduler.grace_period",
     ["0", ">= 1"]),
    ("grace-over-budget", {"scheduler": {"type": "asha", "grace_period": 10}},
     "scheduler.grace_period", ["10", "<= budget.max_epochs (6)"]),
    ("brackets-0", {"scheduler": {"type": "asha", "brackets": 0}}, "scheduler.brackets",
     ["0", ">= 1"]),
    ("scheduler-type", {"scheduler": {"type": "pbt"}}, "scheduler.type",
     ["'pbt'", ", ".join(SCHEDULERS)]),
    ("sampler-type", {"sampler": {"type": "tpee"}}, "sampler.type",
     ["'tpee'", "tpe, gp, cmaes, random, qmc", "did you mean 'tpe'"]),
    ("sampler-no-type", {"sampler": {"seed": 1}}, "sampler.type", ["missing", "tpe, gp"]),
    ("sampler-seed", {"sampler": {"type": "random", "seed": -1}}, "sampler.seed", ["-1", ">= 0"]),
    ("startup-negative", {"sampler": {"type": "gp", "n_startup_trials": -1}},
     "sampler.n_startup_trials", ["-1", ">= 0"]),
    ("qmc-type", {"sampler": {"type": "qmc", "qmc_type": "lattice"}}, "sampler.qmc_type",
     ["'lattice'", "sobol, halton"]),
    ("cmaes-sigma", {"sampler": {"type": "cmaes", "sigma0": 0}}, "sampler.sigma0", ["0", "> 0"]),
    ("bohb-random-share", {"sampler": {"type": "bohb", "random_fraction": 1.5}},
     "sampler.random_fraction", ["1.5", "<= 1"]),
    ("bohb-min-points", {"sampler": {"type": "bohb", "min_points": 0}}, "sampler.min_points",
     ["0", ">= 1"]),
    ("promotion-reduction", {"scheduler": {"type": "promotion_asha", "reduction_factor": 1}},
     "scheduler.reduction_factor", ["1", ">= 2"]),
    ("pasha-grace-over-budget", {"scheduler": {"type": "pasha", "grace_period": 10}},
     "scheduler.grace_period", ["10", "<= budget.max_epochs (6)"]),
    ("stopped-trials", {"sampler": {"type": "tpe", "stopped_trials": "failed"}},
     "sampler.stopped_trials", ["'failed'", "pruned, complete"]),
    ("metric-unknown", {"objective": {"metric": "val_accuracy"}}, "objective.metric",
     ["'val_accuracy'", "did you mean 'val_acc'"]),
    ("metric-unknown-far", {"objective": {"metric": "accuracy_top5"}}, "objective.metric",
     ["'accuracy_top5'", "val_acc, val_loss, train_acc, train_loss, params, flops, latency_ms, "
      "train_seconds"]),
    ("metric-cost-typo", {"objective": {"metric": "latency", "mode": "min"}}, "objective.metric",
     ["'latency'", "did you mean 'latency_ms'"]),
    ("metric-cost-plural", {"objective": {"metric": "flop", "mode": "min"}}, "objective.metric",
     ["'flop'", "did you mean 'flops'"]),
    ("mode-vs-cost", {"objective": {"metric": "params", "mode": "max"}}, "objective.mode",
     ["'max'", "params must be minimised", "mode: min"]),
    ("mode-bad", {"objective": {"mode": "maximize"}}, "objective.mode", ["'maximize'", "max, min"]),
    ("mode-vs-loss", {"objective": {"metric": "val_loss"}}, "objective.mode",
     ["'max'", "val_loss must be minimised", "mode: min"]),
    # several objectives and constraints
    ("objectives-same-metric", {"objective": [{"metric": "val_acc"}, {"metric": "val_acc"}]},
     "objective[1].metric", ["'val_acc'", "objective[0] names it already",
                             "each objective names a different metric"]),
    ("objectives-typo", {"objective": [{"metric": "val_acc"}, {"metric": "param", "mode": "min"}]},
     "objective[1].metric", ["'param'", "did you mean 'params'"]),
    ("objectives-mode", {"objective": [{"metric": "val_acc"}, {"metric": "flops"}]},
     "objective[1].mode", ["'max'", "flops must be minimised", "mode: min"]),
    ("objectives-empty", {"objective": []}, "objective", ["[]", "at least 1"]),
    ("objective-word", {"objective": "val_acc"}, "objective",
     ["'val_acc'", "a mapping {metric, mode} or a list of them"]),
    ("objectives-sampler", {"objective": [{"metric": "val_acc"},
                                          {"metric": "params", "mode": "min"}],
                            "sampler": {"type": "cmaes"}}, "sampler.type",
     ["'cmaes'", "2 metrics", "samplers for several objectives: tpe, gp, random, qmc, bohb, "
      "nsga2, nsga3"]),
    ("objectives-scheduler", {"objective": [{"metric": "val_acc"},
                                            {"metric": "params", "mode": "min"}],
                              "scheduler": {"type": "hyperband"}}, "scheduler.type",
     ["'hyperband'", "schedulers for several objectives: promotion_asha, asha, fifo"]),
    ("objectives-warm", {"objective": [{"metric": "val_acc"},
                                       {"metric": "params", "mode": "min"}],
                         "warm_start": {"from": ["runs/x"]}}, "warm_start",
     ["cannot warm a search of several"]),
    ("constraint-no-bound", {"constraints": [{"metric": "params"}]}, "constraints[0]",
     ["no bound", "exactly one of max or min"]),
    ("constraint-two-bounds", {"constraints": [{"metric": "params", "max": 1.0, "min": 0.0}]},
     "constraints[0]", ["max and min", "exactly one of max or min"]),
    ("constraint-typo", {"constraints": [{"metric": "latency", "max": 1.0}]},
     "constraints[0].metric", ["'latency'", "did you mean 'latency_ms'"]),
    # budget and resources
    ("trials-0", {"budget": {"trials": 0}}, "budget.trials", ["0", ">= 1"]),
    ("max-epochs-0", {"budget": {"max_epochs": 0}}, "budget.max_epochs", ["0", ">= 1"]),
    ("max-epochs-float", {"budget": {"max_epochs": 2.5}}, "budget.max_epochs",
     ["2.5", "an integer"]),
    ("time-limit-0", {"budget": {"time_limit_s": 0}}, "budget.time_limit_s", ["0", "> 0"]),
    ("gpu-0.3", {"trial": {"resources": {"gpu": 0.3}}}, "trial.resources.gpu",
     ["gpu is 0.3 but must be 0, a whole number or 1/k (e.g. 0.5, 0.25)"]),
    ("gpu-1.5", {"trial": {"resources": {"gpu": 1.5}}}, "trial.resources.gpu", ["1.5", "1/k"]),
    ("gpu-negative", {"trial": {"resources": {"gpu": -1}}}, "trial.resources.gpu",
     ["-1", ">= 0"]),
    ("cpu-0", {"trial": {"resources": {"cpu": 0}}}, "trial.resources.cpu", ["0", "> 0"]),
    ("failures-negative", {"trial": {"max_failures": -1}}, "trial.max_failures", ["-1", ">= 0"]),
    ("concurrent-0", {"trial": {"max_concurrent": 0}}, "trial.max_concurrent", ["0", ">= 1"]),
    ("abort-negative", {"trial": {"abort_on_same_error": -1}}, "trial.abort_on_same_error",
     ["-1", ">= 0"]),
    ("abort-typo", {"trial": {"abort_on_same_errors": 3}}, "trial.abort_on_same_errors",
     ["did you mean 'abort_on_same_error'"]),
    # DEHB is its sampler and its scheduler together
    ("dehb-sampler-alone", {"sampler": {"type": "dehb"}}, "scheduler.type",
     ["scheduler is 'promotion_asha'", "sampler dehb decides each trial's epochs itself",
      "write scheduler: {type: dehb}"]),
    ("dehb-scheduler-alone", {"scheduler": {"type": "dehb"}}, "sampler.type",
     ["sampler is 'tpe'", "write sampler: {type: dehb}"]),
    ("dehb-stock", {"sampler": {"type": "dehb", "stopped_trials": "complete"},
                    "scheduler": {"type": "dehb"}}, "sampler.stopped_trials",
     ["'complete'", "must be one of pruned"]),
    ("dehb-strategy", {"sampler": {"type": "dehb", "strategy": "rand9_bin"},
                       "scheduler": {"type": "dehb"}}, "sampler.strategy",
     ["'rand9_bin'", "must be one of rand1_bin, "]),
    ("dehb-crossover", {"sampler": {"type": "dehb", "crossover_prob": 1.5},
                        "scheduler": {"type": "dehb"}}, "sampler.crossover_prob",
     ["1.5", "<= 1"]),
    # name and storage
    ("name-slash", {"name": "a/b"}, "name", ["'a/b'", "'/'"]),
    ("name-dots", {"name": "a..b"}, "name", ["'a..b'", "'..'"]),
    ("name-control", {"name": "a\x01b"}, "name", ["'a\\x01b'", "control characters"]),
    ("name-newline", {"name": "a\nb"}, "name", ["'a\\nb'", "control characters"]),
    ("name-empty", {"name": ""}, "name", ["''", "1 to 100"]),
    ("name-long", {"name": "x" * 101}, "name", ["101 characters", "1 to 100"]),
    ("name-space", {"name": "my run"}, "name", ["'my run'", "letters, digits", "' '"]),
    ("name-hidden", {"name": ".cache"}, "name", ["'.cache'", "start with a letter or digit"]),
    ("name-int", {"name": 5}, "name", ["5", "a string"]),
    ("storage-empty", {"storage_path": ""}, "storage_path", ["''", "at least 1 character"]),
    ("tracking-db-path", {"tracking": {"mlflow_uri": "mlflow.db"}}, "tracking.mlflow_uri",
     ["'mlflow.db'", "needs the sqlite:/// scheme", "did you mean 'sqlite:///mlflow.db'"]),
]


@pytest.mark.parametrize("patch, loc, fragments", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_spec_is_rejected(patch, loc, fragments):
    with pytest.raises(SpecError) as err:
        parse_spec(patched(patch), "bad.yaml")
    found = [p for p in err.value.problems if p.loc == loc]
    assert found, f"no problem at {loc!r}:\n{err.value}"
    for fragment in fragments:
        assert fragment in found[0].message, f"{fragment!r} not in {found[0].message!r}"
    assert f"bad.yaml: {loc}: {found[0].message}" in str(err.value)


def test_credentials_in_tracking_uri_are_rejected_and_redacted():
    patch = {"tracking": {"mlflow_uri": "https://bob:hunter2@mlflow.example.com"}}
    with pytest.raises(SpecError) as err:
        parse_spec(patched(patch))
    (problem,) = err.value.problems
    assert problem.loc == "tracking.mlflow_uri"
    assert "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD" in problem.message
    assert "https://***@mlflow.example.com" in problem.message
    assert "hunter2" not in str(err.value) and "hunter2" not in repr(problem.value)


@pytest.mark.parametrize("uri, meant", [
    ("mlflow.db", "sqlite:///mlflow.db"),
    ("../mlflow.db", "sqlite:///../mlflow.db"),
    ("runs/store.sqlite", "sqlite:///runs/store.sqlite"),
    ("/srv/mlflow.sqlite3", "sqlite:////srv/mlflow.sqlite3"),
    ("file:///srv/mlflow.db", "sqlite:////srv/mlflow.db"),
    ("sqlite:///mlflow.db", None),
    ("sqlite:////srv/mlflow.db", None),
    ("http://127.0.0.1:5000", None),
    ("https://mlflow.example.com/store.db", None),  # a server's path, not a file here
    ("postgresql://db.example.com/mlflow", None),
    ("./mlruns", None),  # a directory: MLflow's own message says what to do
])
def test_a_database_file_given_as_a_path(uri, meant):
    problem = database_path_problem(uri)
    if meant is None:
        assert problem is None
    else:
        assert problem.startswith(f"mlflow_uri is {uri!r} but") and "sqlite:///" in problem
        assert problem.endswith(f"did you mean {meant!r}?")


def test_spec_error_survives_pickling():
    with pytest.raises(SpecError) as err:
        parse_spec(patched({"budget": {"trials": 0}}), "bad.yaml")
    again = pickle.loads(pickle.dumps(err.value))
    assert again.problems == err.value.problems and str(again) == str(err.value)


def test_every_problem_of_a_file_is_reported_at_once():
    patch = {"name": "a/b", "budget": {"trials": 0}, "sampler": {"type": "tpe", "sed": 1},
             "fixed": {"optimzer": "sgd", "batch_size": 0},
             "space": {"lr": {"float": [0.0, 1.0]}, "block": {"choice": ["basic", "basic"]},
                       "gamma": {"uniform": [0, 1]}}}
    with pytest.raises(SpecError) as err:
        parse_spec(patched(patch))
    assert {p.loc for p in err.value.problems} >= {
        "name", "budget.trials", "sampler.sed", "fixed.optimzer", "fixed.batch_size",
        "space.lr.log", "space.block.choice[1]", "space.gamma"}


@pytest.mark.parametrize("mapping, fragment", [
    ([1, 2], "must be a mapping"), (None, "must be a mapping"), ("spec", "must be a mapping"),
])
def test_parse_spec_needs_a_mapping(mapping, fragment):
    with pytest.raises(SpecError, match=fragment):
        parse_spec(mapping)


@pytest.mark.parametrize("text, loc, fragments", [
    ("budget: {trials: 1, max_epochs: 2}\nbudget: {trials: 2, max_epochs: 2}\n", "budget",
     ["duplicate key", "lines 4 and 5"]),
    ("budget: {trials: 1, max_epochs: 2}\nfixed: {tta: yes}\n", "fixed.tta",
     ["'yes'", "true/false"]),
    ("budget: {trials: 1, max_epochs: 2}\nfixed: {lr: !!python/name:os.system }\n", "fixed.lr",
     ["registry names"]),
    ("budget: {trials: 1, max_epochs: 2}\nfixed: {_target_: x.Y}\n", "fixed._target_",
     ["registry names"]),
])
def test_yaml_traps_through_load_spec(tmp_path, text, loc, fragments):
    path = tmp_path / "spec.yaml"
    path.write_text("name: t\ndata: {dataset: synthetic}\nobjective: {metric: val_acc}\n" + text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    found = [p for p in err.value.problems if p.loc == loc]
    assert found, str(err.value)
    assert all(f in found[0].message for f in fragments), found[0].message
    assert str(err.value).startswith(f"{path}: ")


def test_invalid_override_is_a_spec_error(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent("""\
        name: t
        data: {dataset: synthetic}
        budget: {trials: 4, max_epochs: 6}
        scheduler: {type: asha, grace_period: 3}
    """))
    with pytest.raises(SpecError) as err:
        load_spec(path, max_epochs=2)
    assert [p.loc for p in err.value.problems] == ["scheduler.grace_period"]
    with pytest.raises(SpecError) as err:
        load_spec(path, trials=0)
    assert [p.loc for p in err.value.problems] == ["budget.trials"]
    # The value came from the command line: the flag is named, as `--name` is.
    assert str(err.value) == f"{path} (--trials): budget.trials: trials is 0 but must be >= 1"
    with pytest.raises(SpecError) as err:
        load_spec(path, max_epochs=0, flags={"max_epochs": "--epochs"})  # retrain's name
    assert str(err.value).startswith(f"{path} (--epochs): budget.max_epochs: ")
    with pytest.raises(SpecError) as err:  # a field no flag set stays the file's
        load_spec(path, max_epochs=2)
    assert str(err.value).startswith(f"{path}: scheduler.grace_period: ")


# --- the pure rules, table-driven -------------------------------------------------------------

@pytest.mark.parametrize("kind, low, high, log, step, locs", [
    ("float", 0.1, 1.0, False, None, []),
    ("float", 1e-4, 1e-1, True, None, []),
    ("float", 0.0, 1.0, False, 0.25, []),
    ("float", 0.1, 0.5, False, 0.1, []),      # 0.4 / 0.1 is 4.000000000000001 in floats
    ("float", 1.0, 0.1, False, None, ["float"]),
    ("float", -1.0, 1.0, True, None, ["log"]),
    ("float", 0.1, 1.0, True, 0.1, ["step"]),
    ("float", 0.0, 1.0, False, 0.3, ["step"]),
    ("int", 1, 64, True, 1, []),
    ("int", 0, 64, True, 1, ["log"]),
    ("int", 0, 10, False, 5, []),
    ("int", 0, 10, False, 4, ["step"]),
    ("int", 3, 3, False, 1, ["int"]),
    ("int", 2, 64, True, 2, ["step"]),
])
def test_range_rules(kind, low, high, log, step, locs):
    assert [p.loc for p in range_problems(kind, low, high, log, step)] == locs


@pytest.mark.parametrize("choices, locs", [
    (["a", "b"], []), ([1, 2.5, None, True], []), ([[0.5, 0.75], [0.3]], []),
    ([], ["choice"]), (["a", "b", "a"], ["choice[2]"]), ([1, 1.0], ["choice[1]"]),
    ([1, True], []), ([{"x": 1}], ["choice[0]"]), ([[[1]]], ["choice[0]"]),
])
def test_choice_rules(choices, locs):
    assert [p.loc for p in choice_problems(choices)] == locs


def test_when_and_cycle_rules():
    parse = lambda raw: parse_spec(patched({"space": raw}, {**BASE, "space": {}})).space  # noqa
    ok = parse({"residual": {"choice": ["add", "scaled"]},
                "residual_scale": {"float": [0.1, 1.0], "when": {"residual": ["scaled"]}},
                "residual_learnable": {"choice": [True, False], "when": {"residual": "scaled"}}})
    assert when_problems(ok) == [] and cycle_problems(ok) == []
    ok["residual"].when = {"residual_learnable": [True]}
    assert [p.message for p in cycle_problems(ok)] == [
        "when: conditions form a cycle: residual -> residual_learnable -> residual"]
