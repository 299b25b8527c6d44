"""The everyday commands that train nothing load no engine they do not need, given a spec file as
much as an experiment directory: a spec's registry names come from resnet_core.names, not from
the torch modules that hold the registries. And a launch refused by its pre-flight ends as soon
as it has said why: before Ray is imported, leaving through `os._exit` (no interpreter teardown
of the torch it loaded to check the data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from warm_records import record, search_spec

ENGINES = ("torch", "torchvision", "ray", "optuna", "mlflow")

# Runs the real CLI in this interpreter and writes, when the process ends (through sys.exit and
# its atexit hooks, or through os._exit), how it ended and which engines it had loaded.
WRAPPER = """
import atexit, json, os, sys, runpy
out, sys.argv = sys.argv[1], ["resnet-search", *sys.argv[2:]]
def report(how, code=None):
    with open(out, "w") as f:
        json.dump({"how": how, "code": code,
                   "loaded": sorted(m for m in %r if m in sys.modules)}, f)
real_exit = os._exit
def fast(code):
    report("os._exit", code)
    real_exit(code)
os._exit = fast
atexit.register(report, "teardown")
runpy.run_module("search.cli", run_name="__main__", alter_sys=True)
""" % (ENGINES,)


def run_cli(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, dict]:
    ended = cwd / "ended.json"
    ended.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(ended), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HOME": str(cwd)})
    return done, json.loads(ended.read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("light")
    directory = record(base, search_spec("demo"))
    (directory / "launch.log").write_text("== launch 1 ==\nall done\n")
    return base


@pytest.mark.parametrize("command", [
    ["validate", "spec.yaml"], ["status", "spec.yaml"], ["status", "runs/demo"],
    ["trials", "spec.yaml"], ["trials", "spec.yaml", "--json"], ["logs", "spec.yaml"],
    ["export-best", "spec.yaml", "-o", "best.yaml", "--force"], ["list", "runs"],
    ["list", "spec.yaml"]], ids=" ".join)
def test_a_command_that_trains_nothing_loads_no_engine(finished, command):
    done, ended = run_cli(command, finished)
    assert done.returncode == 0, done.stderr
    assert ended["loaded"] == [], f"{' '.join(command)} loaded {ended['loaded']}"


def test_a_launch_refused_by_its_preflight_ends_before_ray_without_teardown(tmp_path):
    spec = search_spec("refused", data={"dataset": "cifar10", "root": str(tmp_path / "none"),
                                        "download": False})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done, ended = run_cli(["launch", "spec.yaml"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "pre-flight: data.root: CIFAR10 files are missing" in done.stderr
    assert "Traceback" not in done.stderr
    # the data check loaded torch; Ray was never imported, and nothing waited for teardown
    assert ended == {"how": "os._exit", "code": 2, "loaded": ["optuna", "torch", "torchvision"]}
    assert not (tmp_path / "runs").exists()  # nothing created


def test_a_refusal_with_nothing_heavy_loaded_ends_the_same_way(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(search_spec("bad", budget={"trials": 0})))
    done, ended = run_cli(["validate", "bad.yaml"], tmp_path)
    assert done.returncode == 2
    assert "budget.trials" in done.stderr  # flushed before the process ended
    assert ended == {"how": "os._exit", "code": 2, "loaded": []}
