"""The team's MLflow tracking server recipe (cluster/mlflow-server.sh), run as a user runs it:
real PostgreSQL (as the `postgres` user when the tests run as root), a real MLflow server with
basic auth on 127.0.0.1, artifacts served by the server. Then the real CLI logs a tiny search
there with a user's credentials, a wrong or missing password fails a launch in seconds, the
default admin password is refused, and `stop` leaves none of its processes behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg2
import pytest
import ray  # noqa: F401  (first: it puts its bundled psutil on sys.path)
import requests
from driving import PARENT_TAG, SMALL_DATA, runs_of
from mlflow.tracking import MlflowClient
from ports import free_port
from processes import ours

import psutil  # noqa: E402  (ships inside Ray: ray/thirdparty_files)
from search.tracking.store import probe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "cluster" / "mlflow-server.sh"
ADMIN_PASSWORD = "e2e-admin-" + os.urandom(6).hex()
USER, PASSWORD = "alice", "alice-" + os.urandom(6).hex()
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def recipe(*args: str, admin_password: str | None = ADMIN_PASSWORD,
           timeout: int = 480) -> subprocess.CompletedProcess:
    """The recipe as a user runs it. `timeout` only catches a hang (pytest-timeout is the last
    guard): a first start (initdb, the server's schema migrations) takes minutes under load."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_ADMIN_PASSWORD", *CREDENTIALS)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the venv's `mlflow`
    if admin_password is not None:
        env["MLFLOW_ADMIN_PASSWORD"] = admin_password
    return subprocess.run(["bash", str(RECIPE), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def server_processes(data: Path) -> list[psutil.Process]:
    """PostgreSQL's processes run in its data directory; the MLflow server and its workers carry
    the recipe's auth config path in their environment."""
    found = []
    for proc in psutil.process_iter():
        try:
            if (proc.cwd().startswith(str(data)) or str(data) in
                    proc.environ().get("MLFLOW_AUTH_CONFIG_PATH", "")):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture(scope="module")
def server():
    # Short (PostgreSQL's socket path must fit 107 bytes) and reachable by the `postgres` user
    # when the tests run as root: pytest's own temp dirs are 0700.
    base = Path(tempfile.mkdtemp(prefix="mlfs-"))
    base.chmod(0o711)
    data, port = base / "data", free_port()
    try:
        # One worker: the recipe's default of 2 is for a team, not a 2-core CI machine.
        started = recipe("start", "--data", str(data), "--port", str(port), "--workers", "1")
        assert started.returncode == 0, started.stdout + started.stderr
        url = started.stdout.strip().splitlines()[-1]
        assert url == f"http://127.0.0.1:{port}"
        # A team member's account, made by the admin as cluster/mlflow-server.md shows.
        made = requests.post(f"{url}/api/2.0/mlflow/users/create", timeout=30,
                             auth=("admin", ADMIN_PASSWORD),
                             json={"username": USER, "password": PASSWORD})
        assert made.status_code == 200, made.text
        yield SimpleNamespace(url=url, data=data, port=port, artifacts=data / "artifacts")
    finally:
        recipe("stop", "--data", str(data))
        for proc in server_processes(data):  # only if the recipe's stop failed
            proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def as_user(monkeypatch, user: str | None, password: str | None) -> None:
    """This process's and the CLI's MLflow credentials: only ever from the environment."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    if user is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_the_recipe_refuses_a_missing_or_default_admin_password(tmp_path):
    for password, named in ((None, "is not set"), ("", "is not set"),
                            ("password1234", "public default password"),
                            ("short", "12 or more")):
        result = recipe("start", "--data", str(tmp_path / "d"), admin_password=password,
                        timeout=60)
        assert result.returncode == 2, (password, result.stderr)
        assert result.stderr.count("\n") == 1 and "MLFLOW_ADMIN_PASSWORD" in result.stderr
        assert named in result.stderr, result.stderr
        assert not (tmp_path / "d" / "postgres").exists()  # refused before anything started


@pytest.mark.ray  # launches in its body
def test_a_search_logs_to_the_server_with_a_users_credentials(
        server, tmp_path, digits_spec, write_spec, cli, monkeypatch):
    as_user(monkeypatch, USER, PASSWORD)
    spec = digits_spec(budget={"trials": 2, "max_epochs": 1}, scheduler={"type": "fifo"},
                       data=SMALL_DATA, tracking={"mlflow_uri": server.url})
    result = cli("launch", str(write_spec(spec)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr

    client, parents, children = runs_of(server.url)
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags[PARENT_TAG] == parent.info.run_id
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert [m.step for m in history] == [1] and 0.0 <= history[0].value <= 1.0

    # Artifacts went through the server into its artifacts destination, not to a local path.
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = (server.artifacts / parent.info.experiment_id / parent.info.run_id / "artifacts")
    for name in ("spec.json", "best_config.json"):
        assert (stored / name).is_file(), sorted(server.artifacts.rglob("*"))
        fetched = Path(client.download_artifacts(parent.info.run_id, name, str(tmp_path)))
        assert fetched.read_text() == (stored / name).read_text()
    # No MLflow store of its own here (the experiment's study.db is Optuna's, not MLflow's).
    assert not list(tmp_path.rglob("mlruns"))
    assert [p.name for p in tmp_path.rglob("*.db")] == ["study.db"]

    # The runs are rows of the recipe's PostgreSQL (over its socket, as the server reaches it).
    with psycopg2.connect(host=str(server.data / "socket"), dbname="mlflow", user="mlflow") as db:
        with db.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM runs WHERE experiment_id = %s",
                           (int(parent.info.experiment_id),))
            assert cursor.fetchone()[0] == 3


def test_a_launch_with_a_wrong_password_fails_in_seconds(
        server, tmp_path, digits_spec, write_spec, cli, monkeypatch):
    wrong = "not-" + PASSWORD
    as_user(monkeypatch, USER, wrong)
    spec = digits_spec(name="e2e-refused", budget={"trials": 2, "max_epochs": 1},
                       scheduler={"type": "fifo"}, data=SMALL_DATA,
                       tracking={"mlflow_uri": server.url})
    result = cli("launch", str(write_spec(spec)), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    # "In seconds" is the mechanism, not a wall time a loaded machine decides: MLflow does not
    # retry a 401 and neither does the probe, so the launch stops on the refusal (not on the
    # probe's deadline), before Ray starts.
    assert "no answer within" not in output
    assert not (tmp_path / ".ray").exists() and not ours(tmp_path)  # Ray was never started
    lines = [line for line in output.splitlines() if "HTTP 40" in line]
    assert len(lines) == 1, output
    assert (f"the server refused user '{USER}' (from MLFLOW_TRACKING_USERNAME): HTTP 401, wrong "
            "password or unknown user; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            ) in lines[0], lines[0]
    assert "Traceback" not in output and wrong not in output

    # Nothing was opened or left running: no experiment, no run, no experiment record.
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    client = MlflowClient(server.url)
    assert client.get_experiment_by_name("e2e-refused") is None
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  "attributes.status = 'RUNNING'")
    assert not (Path(spec["storage_path"]) / "e2e-refused" / "resnet_search.json").exists()


def test_the_default_admin_password_is_refused_after_the_recipe(server, monkeypatch):
    user_api = f"{server.url}/api/2.0/mlflow/users/get?username=admin"
    assert requests.get(user_api, auth=("admin", "password1234"), timeout=30).status_code == 401
    assert requests.get(user_api, auth=("admin", ADMIN_PASSWORD), timeout=30).status_code == 200
    as_user(monkeypatch, "admin", "password1234")
    assert "the server refused user 'admin'" in probe(server.url)
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    assert probe(server.url) is None


def test_a_probe_without_credentials_says_where_they_come_from(server, monkeypatch):
    """The pre-flight's probe, which the wrong-password launch above runs through the CLI."""
    as_user(monkeypatch, None, None)
    monkeypatch.setenv("HOME", str(server.data))  # no ~/.mlflow/credentials either
    said = probe(server.url, timeout_s=600)  # the refusal is the answer: not retried, no wait
    assert said == ("the server asks for credentials (HTTP 401) and none were given: set "
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the launching "
                    "environment (never in the spec)")


def stop_and_check(server) -> None:
    running = server_processes(server.data)
    names = " ".join(" ".join(p.cmdline()) for p in running)
    assert "mlflow" in names and "postgres" in names, names  # the check below can see them
    stopped = recipe("stop", "--data", str(server.data), timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    # Poll rather than wait on them: they are not our children, and a postmaster that has
    # exited stays a zombie until init reaps it (server_processes skips zombies).
    deadline = time.monotonic() + 300  # generous: only exited processes not yet reaped remain
    while server_processes(server.data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not server_processes(server.data)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/health", timeout=5)
    with socket.socket() as sock:
        # Nothing listens there any more (SO_REUSEADDR: closed connections may linger in
        # TIME_WAIT, which is no listener; uvicorn binds the same way).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))


def test_stop_leaves_no_process_and_a_restart_keeps_the_users(server):
    again = recipe("start", "--data", str(server.data), "--port", str(server.port), timeout=60)
    assert again.returncode == 1 and "already running" in again.stderr, again.stderr
    stop_and_check(server)

    # The second start finds the database cluster made and the users in it. MLflow reads the
    # admin password only to create the admin: a changed variable is said, not applied.
    started = recipe("start", "--data", str(server.data), "--port", str(server.port),
                     "--workers", "1", admin_password=ADMIN_PASSWORD + "-changed")
    assert started.returncode == 0, started.stderr
    assert "creating the database cluster" not in started.stderr
    assert "warning: MLFLOW_ADMIN_PASSWORD is not the admin's password" in started.stderr
    user_api = f"{server.url}/api/2.0/mlflow/users/get?username={USER}"
    assert requests.get(user_api, auth=(USER, PASSWORD), timeout=30).status_code == 200
    assert requests.get(user_api, auth=("admin", ADMIN_PASSWORD), timeout=30).status_code == 200
    stop_and_check(server)
