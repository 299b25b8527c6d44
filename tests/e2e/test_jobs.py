"""A search as a Ray job on a real two-node cluster on loopback, started with the shipped recipe
(cluster/start-head.sh with its Jobs API on 127.0.0.1, cluster/join.sh, cluster/stop.sh), token
auth on: submit, status, logs, list, stop, submit again to resume; refused without the token;
a bad spec never reaches the cluster. The steps are the ones cluster/README.md walks through."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from driving import MEDIUM_DATA, SMALL_DATA, runs_of, steps, wait_for
from ports import free_port, node_ports
from processes import kill_ours, ours

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent  # the scripts find the project's environment here


def env_of(home: Path) -> dict:
    return {**os.environ, "HOME": str(home), "RESNET_SEARCH_VENV": str(VENV),
            "PYTHONUNBUFFERED": "1"}


def script(name: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", str(ROOT / "cluster" / name), *args], env=env_of(home),
                          capture_output=True, text=True)
    assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
    return done


@pytest.fixture
def cluster(tmp_path):
    """(Jobs API address, the head's HOME holding the token): a head and a worker, 1 CPU
    each, every socket on 127.0.0.1. Torn down with cluster/stop.sh, pass or fail."""
    homes = {name: tmp_path / name for name in ("head", "worker")}
    for home in homes.values():
        home.mkdir()
    temps = {name: tempfile.mkdtemp(prefix=f"rs-{name}-") for name in homes}  # short: sockets
    port, dashboard = free_port(), free_port()
    try:
        script("start-head.sh", f"--port={port}", f"--dashboard-port={dashboard}",
               "--num-cpus=1", "--node-ip-address=127.0.0.1", f"--temp-dir={temps['head']}",
               *node_ports(), f"--ray-client-server-port={free_port()}", home=homes["head"])
        (homes["worker"] / ".ray").mkdir()
        shutil.copy(homes["head"] / ".ray" / "auth_token", homes["worker"] / ".ray")
        os.chmod(homes["worker"] / ".ray" / "auth_token", 0o600)
        script("join.sh", f"127.0.0.1:{port}", "--num-cpus=1", "--node-ip-address=127.0.0.1",
               f"--temp-dir={temps['worker']}", *node_ports(), home=homes["worker"])
        yield f"http://127.0.0.1:{dashboard}", homes["head"]
    finally:
        for home in homes.values():
            subprocess.run(["bash", str(ROOT / "cluster" / "stop.sh")], env=env_of(home),
                           capture_output=True, text=True, timeout=180)
        left = {name: ours(home) for name, home in homes.items()}
        for home in homes.values():
            kill_ours(home)
        for temp in temps.values():
            shutil.rmtree(temp, ignore_errors=True)
        assert left == {"head": [], "worker": []}, left  # the teardown stopped everything


def cli(*args: str, home: Path, cwd: Path, timeout: int = 540) -> subprocess.CompletedProcess:
    """The CLI as a user runs it. `timeout` only catches a hang (a followed job on a loaded
    machine takes minutes); pytest-timeout is the last guard."""
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=cwd,
                          env=env_of(home), capture_output=True, text=True, timeout=timeout)


def as_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_a_search_submitted_as_a_job_is_followed_stopped_and_resumed(
        cluster, tmp_path, write_spec, digits_spec):
    address, home = cluster
    laptop = tmp_path / "laptop"  # the submitting machine: it holds a copy of the token
    (laptop / ".ray").mkdir(parents=True)
    shutil.copy(home / ".ray" / "auth_token", laptop / ".ray")
    os.chmod(laptop / ".ray" / "auth_token", 0o600)
    # Two trials at once, one per node; long enough that `stop` comes mid-search.
    spec = digits_spec(budget={"trials": 4, "max_epochs": 5}, scheduler={"type": "fifo"},
                       data=MEDIUM_DATA)
    path = write_spec(spec)
    experiment = Path(spec["storage_path"]) / spec["name"]

    bad = write_spec({**spec, "budget": {"trials": 0}}, name="bad.yaml")
    refused = cli("submit", str(bad), "--address", address, home=laptop, cwd=tmp_path)
    assert refused.returncode == 2 and "budget.trials" in refused.stderr
    assert as_json(cli("list", "--address", address, "--json", home=laptop,
                       cwd=tmp_path))["jobs"] == []  # it never reached the cluster

    stranger = tmp_path / "stranger"  # no token
    stranger.mkdir()
    denied = cli("submit", str(path), "--address", address, home=stranger, cwd=tmp_path)
    assert denied.returncode == 1 and "requires token authentication" in denied.stderr
    assert len(denied.stderr.strip().splitlines()) == 1 and "Traceback" not in denied.stderr

    submitted = cli("submit", str(path), "--address", address, "--no-wait", home=laptop,
                    cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = submitted.stdout.strip()
    assert job_id.startswith(f"rs-{spec['name']}-") and "resnet-search stop" in (
        submitted.stderr)
    wait_for(lambda: any(experiment.glob("ray/*/result.json")), 480, "a first epoch of the job")

    seen = as_json(cli("status", job_id, "--address", address, "--json", home=laptop,
                       cwd=tmp_path))
    assert seen["job"]["status"] == "RUNNING" and seen["job"]["experiment"] == spec["name"]
    assert seen["job"]["name"] == spec["name"]  # Ray's dashboard shows it in its Name column
    assert seen["experiment"]["status"] == "running"
    by_name = as_json(cli("status", spec["name"], "--address", address, "--json", home=laptop,
                          cwd=tmp_path))  # the experiment's name finds its job too
    assert by_name["job"]["job_id"] == job_id
    listed = as_json(cli("list", "--address", address, "--json", home=laptop, cwd=tmp_path))
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]
    logs = cli("logs", job_id, "--address", address, home=laptop, cwd=tmp_path)
    assert logs.returncode == 0 and "joining the Ray cluster at " in logs.stdout
    assert "start " in logs.stdout  # the search's own progress lines
    lines = cli("logs", job_id, "--address", address, "--json", home=laptop, cwd=tmp_path)
    pieces = [json.loads(line) for line in lines.stdout.splitlines()]
    assert pieces and {p["source"] for p in pieces} == {job_id}
    # The job runs on: the later read may hold more lines, and the earlier one's last line may
    # have been cut where the output stood; what the earlier read saw comes first, line by line.
    texts, plain = [p["text"] for p in pieces], logs.stdout.removesuffix("\n").split("\n")
    assert texts[:len(plain) - 1] == plain[:-1] and texts[len(plain) - 1].startswith(plain[-1])

    stopped = as_json(cli("stop", job_id, "--address", address, "--json", home=laptop,
                          cwd=tmp_path))
    assert stopped["job"]["job_id"] == job_id and stopped["job"]["status"] == "STOPPED"
    assert stopped["job"]["exit_code"] in (143, None)  # SIGTERM, saved first (below)
    state = json.loads((experiment / "resnet_search.json").read_text())
    assert (state["status"], state["reason"]) == ("interrupted", "SIGTERM")  # it saved first

    again = cli("submit", str(path), "--address", address, home=laptop, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout and "SUCCEEDED" in again.stderr
    done = as_json(cli("status", str(path), "--json", home=laptop, cwd=tmp_path))["experiment"]
    assert done["status"] == "finished" and done["trials"]["completed"] == 4
    assert done["epochs_used"] == 4 * 5
    client, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(parents) == 1 and len(children) == 4  # one run per trial, none twice
    assert all(steps(client, child) == [1, 2, 3, 4, 5] for child in children)
    jobs = as_json(cli("list", "--address", address, "--json", home=laptop, cwd=tmp_path))
    assert {j["status"] for j in jobs["jobs"]} == {"STOPPED", "SUCCEEDED"}


@pytest.mark.ray  # launches in its body
def test_a_head_started_just_before_the_submit_under_load_is_waited_for(
        tmp_path, write_spec, digits_spec):
    """A head answers before its job agent is up ("No available agent to submit job"), and on a
    loaded machine the agent takes long to start: 60 s were not enough once. Submitted the
    moment the head answers, with a busy process beside it, the job must still run."""
    home = tmp_path / "head"
    home.mkdir()
    temp = tempfile.mkdtemp(prefix="rs-busy-")
    port, dashboard = free_port(), free_port()
    spec = digits_spec(name="e2e-fresh-head", budget={"trials": 1, "max_epochs": 1},
                       scheduler={"type": "fifo"}, data=SMALL_DATA)
    burner = subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
    try:
        script("start-head.sh", f"--port={port}", f"--dashboard-port={dashboard}",
               "--num-cpus=1", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}",
               *node_ports(), f"--ray-client-server-port={free_port()}", home=home)
        done = cli("submit", str(write_spec(spec)), "--address",
                   f"http://127.0.0.1:{dashboard}", home=home, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCEEDED" in done.stderr
        # Whether the agent was up already depends on the machine; when it was not, the wait
        # said what it waited for, in the one form the product uses (search/wait).
        for line in done.stderr.splitlines():
            if "job agent" in line:
                assert line.startswith("waiting for the job agent of the Ray head at "
                                       f"http://127.0.0.1:{dashboard}"), line
    finally:
        burner.kill()
        burner.wait()
        subprocess.run(["bash", str(ROOT / "cluster" / "stop.sh")], env=env_of(home),
                       capture_output=True, text=True, timeout=180)
        kill_ours(home)
        shutil.rmtree(temp, ignore_errors=True)
    assert not ours(home)
