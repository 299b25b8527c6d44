"""`launch --address` against a real Ray head node on loopback, with token authentication on.

The head is started the way a user starts one (`ray get-auth-token --generate`, then
`RAY_AUTH_MODE=token ray start --head`) in a HOME of its own; the driver runs in another HOME,
as on a laptop: it holds the cluster's token only when the test gives it one.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import pytest
from mlflow.tracking import MlflowClient
from ports import free_port, node_ports
from processes import kill_ours, ours

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def two_nodes(base: Path, hidden: Optional[Path] = None):
    """Two nodes on loopback, started with the shipped recipe: cluster/start-head.sh (makes the
    token) and cluster/join.sh (a second raylet holding the same token), 1 CPU each. With
    `hidden`, the worker runs in a mount namespace of its own where that directory is an empty
    tmpfs: a node that does not share the driver's storage, as on a cluster without NFS."""
    homes = {name: base / name for name in ("head", "worker")}
    # Own temp dirs (short: Ray's socket paths must fit 107 bytes): `ray start` records the
    # cluster in <temp>/ray_current_cluster, which must not outlive this test in /tmp/ray.
    temps = {name: tempfile.mkdtemp(prefix=f"rs-{name}-") for name in homes}
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the venv's `ray`
    env = {name: {**os.environ, "HOME": str(home), "PATH": path} for name, home in homes.items()}
    port = free_port()
    try:
        for home in homes.values():
            home.mkdir(parents=True)
        started = subprocess.run(
            ["bash", str(ROOT / "cluster" / "start-head.sh"), f"--port={port}", "--num-cpus=1",
             "--node-ip-address=127.0.0.1", f"--temp-dir={temps['head']}",
             *node_ports(), f"--dashboard-port={free_port()}",
             f"--ray-client-server-port={free_port()}"],
            env=env["head"], capture_output=True, text=True)
        assert started.returncode == 0, started.stdout + started.stderr
        token = (homes["head"] / ".ray" / "auth_token").read_text().strip()
        join = ["bash", str(ROOT / "cluster" / "join.sh"), f"127.0.0.1:{port}", "--num-cpus=1",
                "--node-ip-address=127.0.0.1", f"--temp-dir={temps['worker']}", *node_ports()]
        if hidden is not None:
            hidden.mkdir(parents=True, exist_ok=True)
            join = ["unshare", "--mount", "--propagation", "private", "bash", "-c",
                    f"mount -t tmpfs none {shlex.quote(str(hidden))} && exec {shlex.join(join)}"]
        # No limit of its own: `ray start` waits on its own processes, which a loaded machine
        # (the suite's other test files beside this one) only slows; pytest-timeout catches a
        # hang.
        joined = subprocess.run(join, env={**env["worker"], "RAY_AUTH_TOKEN": token},
                                capture_output=True, text=True)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        yield SimpleNamespace(address=f"127.0.0.1:{port}", token=token)
    finally:
        for name, home in homes.items():
            # stop.sh also finds Ray's agents and workers, which HOME alone misses (they
            # rename themselves, blanking their environment); kill_ours is the fallback.
            subprocess.run(["bash", str(ROOT / "cluster" / "stop.sh")], env=env[name],
                           capture_output=True, timeout=120)
            kill_ours(home)
            shutil.rmtree(temps[name], ignore_errors=True)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    with two_nodes(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


def test_join_refuses_to_start_a_node_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    result = subprocess.run(["bash", str(ROOT / "cluster" / "join.sh"), "127.0.0.1:1"],
                            env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "no Ray token here" in result.stderr
    assert not ours(tmp_path)  # no raylet was started


def launch(spec_path: Path, home: Path, address: str, **env: str) -> subprocess.CompletedProcess:
    """The real CLI as a driver whose HOME (so ~/.ray/auth_token) is `home`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    full.update(HOME=str(home), PYTHONUNBUFFERED="1", **env)
    return subprocess.run([sys.executable, "-m", "search.cli", "launch", str(spec_path),
                           "--address", address], cwd=home, env=full, capture_output=True,
                          text=True)


@pytest.mark.ray  # launches in its body
def test_a_local_launch_ignores_a_dead_cluster_that_ray_start_left_behind(
        tmp_path, write_spec, digits_spec):
    """`ray start` records its cluster in <ray temp>/ray_current_cluster, and a plain ray.init()
    joins it — or retries forever once it has died. A launch without --address must start its
    own Ray whatever that file says."""
    temp = Path(tempfile.mkdtemp(prefix="rs-tmp-"))  # short: Ray's socket paths are capped
    try:
        (temp / "ray").mkdir()
        (temp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
        spec = digits_spec(budget={"trials": 2, "max_epochs": 1}, scheduler={"type": "fifo"},
                           data={"dataset": "digits", "val_fraction": 0.2, "subset": 256})
        full = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(temp)}
        result = subprocess.run([sys.executable, "-m", "search.cli", "launch",
                                 str(write_spec(spec))], cwd=tmp_path, env=full,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Started a local Ray instance" in result.stderr
        assert "best trials of 'e2e-digits' (2 trials)" in result.stdout
    finally:
        kill_ours(tmp_path)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_driver_with_the_token_runs_the_search_on_the_cluster(
        head, tmp_path, write_spec, digits_spec):
    spec = digits_spec(budget={"trials": 3, "max_epochs": 1}, scheduler={"type": "fifo"},
                       data={"dataset": "digits", "val_fraction": 0.2, "subset": 256})
    result = launch(write_spec(spec), tmp_path, head.address, RAY_AUTH_TOKEN=head.token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "best trials of 'e2e-digits' (3 trials)" in result.stdout
    # It joined the head's Ray: the driver started no Ray of its own.
    assert "Connecting to existing Ray cluster" in result.stderr
    assert "the same directory on all 2 nodes" in result.stderr  # storage_path was checked
    assert not (tmp_path / ".ray").exists() and not ours(tmp_path)
    client = MlflowClient(spec["tracking"]["mlflow_uri"])
    runs = client.search_runs([client.get_experiment_by_name("e2e-digits").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    # Both nodes were in the cluster the search ran on (1 CPU each: a trial per node at once).
    assert parents[0].data.tags["hardware.cluster_nodes"] == "2"
    assert parents[0].data.tags["hardware.cluster_cpu"] == "2.0"
    assert len(children) == 3 and {r.data.tags["outcome"] for r in children} == {"completed"}


@pytest.mark.parametrize("extra, said", [
    ({}, "no token was found"),
    ({"RAY_AUTH_MODE": "token"}, "no token was found"),  # Ray's client would abort the process
    ({"RAY_AUTH_TOKEN": "0" * 64}, "the token from RAY_AUTH_TOKEN was refused"),
], ids=["no-token", "token-mode-no-token", "wrong-token"])
def test_a_driver_without_the_right_token_is_refused_with_a_clear_error(
        head, tmp_path, write_spec, digits_spec, extra, said):
    spec = digits_spec(budget={"trials": 2, "max_epochs": 1})
    result = launch(write_spec(spec), tmp_path, head.address, **extra)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "requires token authentication" in result.stderr and said in result.stderr
    assert "Traceback" not in result.stderr
    # Asked once: ray.init would ask some twenty times (minutes on a busy head) for an answer
    # that cannot change.
    assert result.stderr.count("Failed to get cluster ID from GCS server") <= 1, result.stderr
    assert not (tmp_path / "runs").exists()  # nothing ran


@pytest.mark.ray  # launches in its body
def test_a_storage_path_one_node_cannot_see_is_refused_before_training(
        tmp_path, write_spec, digits_spec):
    """RELIABILITY: 'multi-node with a local-only storage_path' is bad input. The worker node
    sees an empty tmpfs where the driver's storage_path is (its own mount namespace)."""
    spec = digits_spec(budget={"trials": 2, "max_epochs": 1})
    storage = Path(spec["storage_path"])
    with two_nodes(tmp_path / "cluster", hidden=storage) as cluster:
        result = launch(write_spec(spec), tmp_path, cluster.address,
                        RAY_AUTH_TOKEN=cluster.token)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "storage_path" in result.stderr and str(storage) in result.stderr
    assert "is not visible from 1 of 2 nodes" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (storage / "e2e-digits").exists()  # nothing ran, no experiment was created
    assert not list(storage.glob(".resnet-search-probe-*"))  # the probe cleaned up after itself
