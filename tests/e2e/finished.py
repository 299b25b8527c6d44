"""One finished digits search logged to a real MLflow tracking server, shared by the tests of
what a user does with a search's results (the MLflow UI, `report`, `trials`, `export-best`,
`retrain`). A search costs a minute on the CI machine: they read the same one and never change
what it wrote (a test that needs to change it copies the experiment first). It is built once
per test run, whatever the number of xdist workers (tests/support/shared.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ports import free_port

from search.tracking.ui import stop_server, wait_ready

NAME = "e2e-results"


@dataclass
class Finished:
    home: Path  # the tests' HOME and working directory for the CLI
    spec_path: Path
    spec: dict
    experiment: Path  # storage_path/NAME
    server_url: str  # the MLflow tracking server, http://127.0.0.1:PORT
    launch: subprocess.CompletedProcess  # the launch's output and exit code

    def dump(self) -> dict:
        return {"home": str(self.home), "spec_path": str(self.spec_path), "spec": self.spec,
                "experiment": str(self.experiment), "server_url": self.server_url,
                "launch": {"args": self.launch.args, "returncode": self.launch.returncode,
                           "stdout": self.launch.stdout, "stderr": self.launch.stderr}}

    @classmethod
    def load(cls, data: dict) -> "Finished":
        launch = data["launch"]
        return cls(Path(data["home"]), Path(data["spec_path"]), data["spec"],
                   Path(data["experiment"]), data["server_url"],
                   subprocess.CompletedProcess(launch["args"], launch["returncode"],
                                               launch["stdout"], launch["stderr"]))


def results_spec(home: Path, server_url: str) -> dict:
    """Small enough for 2 CPU cores, with every kind of parameter a report shows: a log-scaled
    float, a plain float, choices, and a conditional one (residual_scale only on `scaled`)."""
    return {
        "name": NAME,
        "data": {"dataset": "digits", "val_fraction": 0.2},
        "objective": {"metric": "val_acc", "mode": "max"},
        "budget": {"trials": 8, "max_epochs": 3},
        "trial": {"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0},
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 4},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "fixed": {"depth": 20, "width": 0.25, "batch_size": 32, "optimizer": "nesterov",
                  "zero_init_residual": False, "tta": False, "precise_bn": 256},
        "space": {
            "lr": {"float": [0.02, 0.5], "log": True},
            "weight_decay": {"float": [1e-5, 1e-3], "log": True},
            "augment": {"float": [0.0, 0.2]},
            "schedule": {"choice": ["cosine", "onecycle"]},
            "residual": {"choice": ["add", "scaled"]},
            "residual_scale": {"float": [0.2, 1.0], "when": {"residual": "scaled"}},
        },
        "tracking": {"mlflow_uri": server_url},
        "storage_path": str(home / "runs"),
    }


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on 127.0.0.1 (SQLite backend, artifacts served by the server), as a user
    starts one to share the UI; returns once it answers."""
    port = free_port()
    data = home / "mlflow-server"
    data.mkdir()
    with open(data / "server.log", "w") as log:  # the server holds its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(port), "--workers", "1", "--backend-store-uri",
             f"sqlite:///{data / 'mlflow.db'}", "--artifacts-destination", str(data / "artifacts")],
            cwd=data, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "HOME": str(home)})
    url = f"http://127.0.0.1:{port}"
    try:  # the product's own wait and stop for an MLflow server it starts (`resnet-search ui`)
        wait_ready(proc, url, data / "server.log")
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


def run_search(home: Path, server_url: str, run_cli) -> Finished:
    spec = results_spec(home, server_url)
    spec_path = home / "results.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    launch = run_cli("launch", str(spec_path), cwd=home)
    assert launch.returncode == 0, launch.stdout[-3000:] + launch.stderr[-3000:]
    return Finished(home, spec_path, spec, home / "runs" / NAME, server_url, launch)


def build(home: Path, config, run_cli) -> dict:
    """The server and the search in `home`, for `shared.once`: the server (HOME=`home`, as the
    launch's Ray) is swept when the test run ends."""
    import shared

    shared.keep_until_the_end(config, home)
    _, url = start_server(home)
    return run_search(home, url, run_cli).dump()
