"""End-to-end helpers: write a spec, run the real `resnet-search` CLI in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import yaml
from types import SimpleNamespace
from processes import kill_ours
from mlflow_template import copy_template
import shared


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real CLI in a fresh process, waited for as long as it runs. No deadline of its own: a
    launch that resumes at load 20 takes many times what it takes alone (the busy-machine run
    of the suite, bench/busy_suite.py, failed three tests on fixed 240-300 s limits while their
    launches were training), and a command that hangs is caught by the test's pytest-timeout
    (pyproject.toml), which names the test."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0",
           # Each test gets its own Ray session and token dir, never the user's ~/.ray.
           "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


@pytest.fixture
def write_spec(tmp_path: Path, mlflow_template: Path):
    """`write(spec)`: the spec as a YAML file in the test's folder. A SQLite store the spec names
    by absolute path and that does not exist yet is made first as a copy of the session's
    migrated template (tests/support/mlflow_template.py): what a launch finds in a directory it
    logged to before. Creating a store (MLflow's migrations: seconds each launch) is the
    business of the tests that create one: tests/search/tracking/test_sqlite_store.py and the
    launches here whose store is relative to their working directory or exists already."""
    def write(spec: dict, name: str = "spec.yaml") -> Path:
        db = sqlite_file(spec)
        if db is not None and not db.exists():
            copy_template(mlflow_template, db)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write


def sqlite_file(spec: dict) -> Optional[Path]:
    """The absolute SQLite file the spec's tracking URI names, or None."""
    uri = str((spec.get("tracking") or {}).get("mlflow_uri") or "")
    if not uri.startswith("sqlite:////"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0])


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def digits_spec(tmp_path: Path):
    return lambda **changes: tiny_digits_spec(tmp_path, **changes)


def tiny_digits_spec(tmp_path: Path, **changes) -> dict:
    """A search small enough for a 2-core CI machine: real digits, real ASHA stops."""
    spec = {
        "name": "e2e-digits",
        "data": {"dataset": "digits", "val_fraction": 0.2},
        "objective": {"metric": "val_acc", "mode": "max"},
        "budget": {"trials": 6, "max_epochs": 3},
        "trial": {"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0},
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 3},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 3},
        "fixed": {"depth": 20, "width": 0.25, "batch_size": 128, "optimizer": "nesterov",
                  "schedule": "onecycle", "augment": 0.0},
        "space": {
            "lr": {"float": [0.001, 0.3], "log": True},
            "residual": {"choice": ["add", "scaled"]},
            "residual_scale": {"float": [0.0, 1.0], "when": {"residual": "scaled"}},
        },
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "storage_path": str(tmp_path / "runs"),
    }
    for key, value in changes.items():
        spec[key] = value
    return spec


@pytest.fixture(scope="session")
def finished(request):
    """A finished 8-trial digits search logged to a real MLflow server on 127.0.0.1:
    `finished.Finished`, built once per test run and shared by every xdist worker
    (tests/support/shared.py); the server lives until the run ends. Read it; never change it."""
    from finished import Finished, build

    return Finished.load(shared.once(request.config, "finished",
                                     lambda home: build(home, request.config, run_cli)))


@pytest.fixture
def reaper(tmp_path: Path):
    """Tests that SIGKILL a driver or a worker leave no Ray process behind, pass or fail."""
    yield
    kill_ours(tmp_path)


@pytest.fixture(params=["directory", "s3"])
def storage(request, tmp_path: Path):
    """Where a test's experiments live: a directory, or a bucket of the test S3 server (the
    `s3` fixture also points this process's environment, and so the CLI's and Ray's, at it)."""
    if request.param == "directory":
        return SimpleNamespace(kind="directory", path=str(tmp_path / "runs"))
    bucket = request.getfixturevalue("s3")
    return SimpleNamespace(kind="s3", path=f"{bucket.uri}/runs", bucket=bucket)
