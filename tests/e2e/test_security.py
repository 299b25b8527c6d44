"""Secure by default, through the real CLI on a real local Ray: the local Ray listens on loopback
only, its token file is readable by its owner only, and an experiment whose pickled state someone
else could have written is refused before anything of it is unpickled.

One interrupted search (module fixture) is shared: starting Ray and training is what costs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import pickle
import pwd
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from driving import SMALL_DATA, held, results, trial_dirs, wait_for
from ports import free_port
from processes import kill_ours, ours

import psutil  # noqa: E402  (Ray's bundled copy, on the path once processes imported Ray)

NAME = "e2e-security"
NOBODY = pwd.getpwnam("nobody")
# Whoever may write storage_path (a team's group, not the owner's private group).
TEAM_GID = NOBODY.pw_gid


def env_of(home: Path) -> dict:
    """The CLI's environment: HOME of its own (so its Ray processes are found by it and its token
    is made fresh), and no token from the caller's environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")}
    return {**env, "PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0", "HOME": str(home)}


def launch(spec: Path, home: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.cli", "launch", str(spec)], cwd=home,
                          env=env_of(home), capture_output=True, text=True, timeout=timeout)


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    if address.version == 6 and address.ipv4_mapped is not None:  # ::ffff:127.0.0.1
        address = address.ipv4_mapped
    return address.is_loopback


def listening(home: Path) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of the processes of `home`'s
    driver: the driver and everything its Ray started (they all inherit its HOME)."""
    found = []
    for proc in ours(home):
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((proc.name(), conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A real search, interrupted by Ctrl+C once Ray has saved its state, in a fresh HOME; what
    listened while it ran."""
    home = tmp_path_factory.mktemp("security")
    spec = {
        "name": NAME, "data": SMALL_DATA, "objective": {"metric": "val_acc", "mode": "max"},
        # Long enough to be still running when the sockets have been listed and Ctrl+C comes
        # (2 epochs could end first on a fast machine: CI caught a finished search).
        "budget": {"trials": 2, "max_epochs": 12},
        "trial": {"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0},
        "sampler": {"type": "random", "seed": 0}, "scheduler": {"type": "fifo"},
        "fixed": {"depth": 20, "width": 0.25, "batch_size": 128, "optimizer": "nesterov",
                  "augment": 0.0},
        "space": {"lr": {"float": [0.001, 0.3], "log": True}},
        "tracking": {"mlflow_uri": f"sqlite:///{home / 'mlflow.db'}"},
        "storage_path": str(home / "runs"),
    }
    path = home / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    experiment = home / "runs" / NAME
    with open(home / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, "-m", "search.cli", "launch", str(path)], cwd=home,
            env=env_of(home), start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (experiment / "ray" / "tuner.pkl").exists() and any(
            results(d) for d in trial_dirs(experiment)), 240, "the first result", proc=driver)
        with held(driver):  # still running when Ctrl+C comes, however fast its trials
            sockets = listening(home)
            os.killpg(driver.pid, signal.SIGINT)
            time.sleep(1)
        code = driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        kill_ours(home)
    assert code == 130, (home / "driver.log").read_text()[-3000:]
    assert state(experiment)["status"] == "interrupted"
    return SimpleNamespace(home=home, spec=path, experiment=experiment, sockets=sockets,
                           log=(home / "driver.log").read_text())


def state(experiment: Path) -> dict:
    return json.loads((experiment / "resnet_search.json").read_text())


# --- a local search listens on loopback only, and its token is its owner's ---------------------

def test_every_socket_of_a_local_launch_listens_on_loopback_only(interrupted):
    names = {name for name, _, _ in interrupted.sockets}
    # Not vacuous: Ray's servers (GCS, raylet) and its Python processes were seen listening.
    assert {"gcs_server", "raylet"} <= names, interrupted.sockets
    assert len(interrupted.sockets) >= 5, interrupted.sockets
    wide = [s for s in interrupted.sockets if not is_loopback(s[1])]
    assert not wide, f"listening beyond loopback: {wide}"


def test_a_local_launch_makes_its_token_file_readable_by_its_owner_only(interrupted):
    token = interrupted.home / ".ray" / "auth_token"
    assert mode(token) == 0o600
    assert mode(token.parent) == 0o700
    assert len(token.read_text().strip()) == 64  # what Ray makes: 256 random bits in hex
    assert "made the Ray token file" not in interrupted.log  # made private, nothing to tighten


def test_joining_a_cluster_makes_the_users_token_file_private_first(tmp_path, monkeypatch,
                                                                     caplog):
    # `launch --address` reads the token: it is tightened before Ray reads it, also when the
    # join then fails (here: nothing listens at the address).
    from search.run.errors import LaunchError
    from search.run.runtime import init_ray

    for variable in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("0" * 64)
    token.chmod(0o644)
    with pytest.raises(LaunchError, match="no Ray cluster answers"):
        init_ray(f"127.0.0.1:{free_port()}")
    assert mode(token) == 0o600
    assert f"made the Ray token file {token} private: mode 0644 -> 0600" in caplog.text

    # One the user does not own is left as it is, and said to be readable.
    caplog.clear()
    given = tmp_path / "given_token"
    given.write_text("1" * 64)
    given.chmod(0o644)
    os.chown(given, NOBODY.pw_uid, NOBODY.pw_gid)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(given))
    with pytest.raises(LaunchError):
        init_ray(f"127.0.0.1:{free_port()}")
    assert mode(given) == 0o644
    assert f"the Ray token file {given} is mode 0644 and owned by uid {NOBODY.pw_uid}" in \
        caplog.text


# --- pickled state someone else could have written is never restored --------------------------

class Planted:
    """Unpickling it runs code: here, writing a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def snapshot(experiment: Path) -> dict[str, tuple[str, int, int]]:
    """Every file of the experiment: its digest, mode and owner (the record and the launch log,
    which every launch writes, aside)."""
    return {str(p.relative_to(experiment)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                            p.stat().st_mode, p.stat().st_uid)
            for p in sorted(experiment.rglob("*"))
            if p.is_file() and p.name not in ("resnet_search.json", "lease.json", "launch.log")}


def refused(done: subprocess.CompletedProcess, tuner: Path, why: str) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if "refusing to resume" in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cannot launch: refusing to resume the experiment")
    assert f"file {tuner} {why}" in lines[0], lines[0]
    return lines[0]


def test_a_planted_pickle_is_refused_and_never_unpickled_and_a_clean_experiment_resumes(
        interrupted):
    home, experiment = interrupted.home, interrupted.experiment
    tuner = experiment / "ray" / "tuner.pkl"
    marker = home / "planted-code-ran"
    # The planted file does run code when unpickled: what the refusal has to prevent.
    probe = home / "probe-marker"
    pickle.loads(pickle.dumps(Planted(probe)))
    assert probe.read_text() == "ran"
    original = tuner.read_bytes()
    token = home / ".ray" / "auth_token"

    # 1. Written by a member of the team group that may write storage_path.
    tuner.write_bytes(pickle.dumps(Planted(marker)))
    os.chown(tuner, -1, TEAM_GID)
    tuner.chmod(0o664)
    before = snapshot(experiment)
    done = launch(interrupted.spec, home, timeout=180)
    line = refused(done, tuner, "is writable by its group")
    assert "mode 0664" in line and "group nogroup" in line and f"`chmod go-w {tuner}`" in line
    assert not marker.exists(), "the planted pickle was unpickled"
    assert snapshot(experiment) == before  # nothing of the experiment changed
    assert state(experiment)["status"] == "interrupted"  # still resumable
    # Refused before Ray started (search/run/launch.py): no Ray, no MLflow run reopened.
    assert "Started a local Ray" not in done.stderr and mode(token) == 0o600

    # 2. Owned by another user, even read-only.
    os.chown(tuner, NOBODY.pw_uid, NOBODY.pw_gid)
    tuner.chmod(0o444)
    done = launch(interrupted.spec, home, timeout=180)
    line = refused(done, tuner, "is not owned by you")
    assert f"owner nobody (uid {NOBODY.pw_uid})" in line and "check who wrote it" in line
    assert not marker.exists(), "the planted pickle was unpickled"
    assert "made the Ray token file" not in done.stderr  # already private

    # 3. The experiment as Ray wrote it resumes and finishes.
    tuner.write_bytes(original)
    os.chown(tuner, os.geteuid(), os.getegid())
    tuner.chmod(0o644)
    done = launch(interrupted.spec, home, timeout=300)
    kill_ours(home)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "(resumed)" in done.stdout
    assert state(experiment)["status"] == "finished"
    assert not marker.exists()
