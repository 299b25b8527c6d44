"""`data.root` read on every node before any training (search/run/checks.py `data_problems`).

Two nodes on loopback from test_cluster.two_nodes: the worker runs in a mount namespace where the
data directory is an empty tmpfs, as a worker without the dataset copied or mounted. With
--address the driver's pre-flight does not read the data (it lives where the workers run), so
this check is what stops the launch before three trials fail on that node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from test_cluster import two_nodes

pytestmark = pytest.mark.ray

# Joins the cluster the way a launch does and asks each node, through the product's check,
# about a dataset root; prints the problems found and the worker node's name.
PROBE = """
import json, sys
from resnet_core.config import DataConfig
from search.remote import cluster
from search.run.checks import data_problems
from search.spec.model import Resources
cluster.join(sys.argv[1], runtime_env={})
worker = [n for n in cluster.alive_nodes() if "node:__internal_head__" not in n["Resources"]]
found = {}
for name, dataset, root in [("seen", "imagefolder", sys.argv[2]),
                            ("hidden", "imagefolder", sys.argv[3]),
                            ("generated", "digits", sys.argv[3])]:
    data = DataConfig(dataset=dataset, root=root)
    found[name] = [p.message for p in data_problems(data, Resources(cpu=1), None)]
found["two_cpus"] = [p.message for p in data_problems(
    DataConfig(dataset="imagefolder", root=sys.argv[3]), Resources(cpu=2), None)]
print(json.dumps({"worker": cluster.node_name(worker[0]), "found": found}))
"""


def image_folder(root: Path) -> Path:
    for label in ("a", "b"):
        (root / "train" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 90, 0, 0)).save(root / "train" / label / f"{i}.png")
    return root


def test_a_data_root_one_node_cannot_read_is_refused_before_training(
        tmp_path, write_spec, digits_spec):
    hidden = image_folder(tmp_path / "data")  # the driver and the head see it, the worker not
    seen = image_folder(tmp_path / "shared")  # every node sees this one
    spec = digits_spec(budget={"trials": 2, "max_epochs": 1},
                       data={"dataset": "imagefolder", "root": str(hidden), "val_fraction": 0.5})
    storage = Path(spec["storage_path"])
    home = tmp_path / "driver"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    with two_nodes(tmp_path / "cluster", hidden=hidden) as cluster:
        env.update(HOME=str(home), PYTHONUNBUFFERED="1", RAY_AUTH_TOKEN=cluster.token)
        result = subprocess.run([sys.executable, "-m", "search.cli", "launch",
                                 str(write_spec(spec)), "--address", cluster.address],
                                cwd=home, env=env, capture_output=True, text=True)
        probe = subprocess.run([sys.executable, "-c", PROBE, cluster.address, str(seen),
                                str(hidden)], cwd=home, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    asked = json.loads(probe.stdout.strip().splitlines()[-1])
    worker = asked["worker"]

    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr
    assert "Traceback" not in err
    problem = next(line for line in err.splitlines() if "data.root" in line)
    # The field, its value, how many nodes, which node, what it lacks and what to do.
    assert str(hidden) in problem
    assert "1 of 2 nodes that run trials cannot read the imagefolder data there" in problem
    assert f"{worker}: {hidden}/train: missing" in problem, problem
    assert "copy the dataset to that path on those nodes or mount it there" in problem
    assert "the same directory on all 2 nodes" in err  # storage_path is fine: only data.root
    assert not (storage / spec["name"]).exists()  # nothing ran, no experiment was created

    found = asked["found"]
    assert found["seen"] == [] and found["generated"] == []  # digits has no files to check
    (message,) = found["hidden"]
    assert f"{worker}: {hidden}/train: missing" in message
    assert found["two_cpus"] == []  # no node can run a 2-CPU trial: none of them is asked
