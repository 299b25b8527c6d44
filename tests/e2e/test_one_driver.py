"""One driver per experiment also after a resume, on a directory and on S3, through the real CLI.

Ray's restore downloads everything in its experiment folder to the driver and its sync uploads it
all back every few seconds. When the lease and the record lay in that folder, a resumed driver's
lease was reverted to its restore-time copy again and again: on S3 its heartbeat failed at every
beat and a second host took the experiment over while it trained (two drivers, 15 trial starts
for a budget of 8); on a directory the lease's heartbeat froze, so another host judged it gone.
The scheduler's record was reverted the same way, so a crash of a resumed run lost ASHA's rungs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from driving import (MEDIUM_DATA, cli_env, driver_log, epochs_of, journaled, kill_driver,
                     once_each, results, runs_of, start_launch, steps, trial_dirs, wait_for)

from search.experiment.lease import LEASE_FILE, TTL_ENV
from search.experiment.storage import as_path, read_text

# Every launch of these tests judges another host's lease gone after 20 s without a heartbeat
# (a heartbeat every 3.3 s): the scenarios need "longer than the TTL" without minutes of waiting.
TTL_S = 20.0
# Ray snapshots its experiment at least every 10 s and uploads it to S3 every 15 s
# (search/run/tuner.py): watching the lease this long sees several of Ray's syncs.
WATCH_S = 40.0


def lease_on_storage(experiment) -> Optional[dict]:
    try:
        return json.loads(read_text(experiment / LEASE_FILE))
    except (FileNotFoundError, ValueError):
        return None


def trained(experiment, kind: str) -> int:
    """Epochs the experiment's trials have reported, as seen on the storage (S3: the trials'
    checkpoints, which the workers upload at once; results come every 15 s)."""
    if kind == "directory":
        return sum(len(results(d)) for d in trial_dirs(experiment))
    ray = experiment / "ray"
    return sum(1 for trial in (ray.iterdir() if ray.is_dir() else []) if trial.is_dir()
               for child in trial.iterdir() if child.name.startswith("checkpoint_"))


def launch_from_another_host(spec_path: Path, home: Path) -> subprocess.CompletedProcess:
    """`launch` as a second machine that shares the storage would run it: another hostname
    (a UTS namespace of its own), the same storage."""
    return subprocess.run(
        ["unshare", "-u", "sh", "-c", 'hostname other-host && exec "$0" "$@"', sys.executable,
         "-m", "search.cli", "launch", str(spec_path)],
        cwd=home, env=cli_env(home), capture_output=True, text=True)


def test_a_resumed_driver_keeps_its_lease_and_a_second_host_is_refused(
        tmp_path, write_spec, digits_spec, cli, reaper, storage, monkeypatch):
    monkeypatch.setenv(TTL_ENV, str(TTL_S))  # inherited by every launch below
    # Far more epochs than the test needs: it ends the search with `stop` once it has seen
    # enough, so a fast machine cannot finish it too early.
    spec = digits_spec(budget={"trials": 4, "max_epochs": 40}, scheduler={"type": "fifo"},
                       data=MEDIUM_DATA, storage_path=storage.path)
    path = write_spec(spec)
    experiment = (tmp_path / "runs" / spec["name"] if storage.kind == "directory"
                  else as_path(storage.path) / spec["name"])

    first = start_launch(path, tmp_path)
    wait_for(lambda: trained(experiment, storage.kind) >= 1, 240, "a first epoch", proc=first)
    kill_driver(first, tmp_path)
    os.replace(tmp_path / "driver.log", tmp_path / "first-driver.log")

    second = start_launch(path, tmp_path)  # takes the dead driver's lease over and resumes
    try:
        before = trained(experiment, storage.kind)
        wait_for(lambda: trained(experiment, storage.kind) > before, 240,
                 "an epoch of the resumed search", proc=second)
        log = driver_log(second)
        assert "took over the lease of a driver that is gone" in log and "resum" in log, log

        # The lease on storage is the resumed driver's, and its heartbeat moves, through
        # several of Ray's syncs of its experiment folder.
        seen, started = [], time.monotonic()
        while time.monotonic() - started < WATCH_S:
            assert second.poll() is None, driver_log(second)
            lease = lease_on_storage(experiment)
            assert lease is not None, "the live driver's lease is gone from the storage"
            seen.append((time.monotonic(), lease))
            time.sleep(0.5)
        assert {l["pid"] for _, l in seen} == {second.pid}
        assert len({l["token"] for _, l in seen}) == 1
        beats = [l["heartbeat_at"] for _, l in seen]
        assert beats == sorted(beats), "the heartbeat went back in time (a restore-time copy)"
        changes = [t for (t, l), (_, k) in zip(seen, seen[1:]) if l["heartbeat_at"] !=
                   k["heartbeat_at"]]
        gaps = [b - a for a, b in zip([started, *changes], [*changes, time.monotonic()])]
        assert max(gaps) < TTL_S / 2, f"the heartbeat stalled for {max(gaps):.0f} s"

        # More than the TTL after the resume, a launch from another host is refused, naming the
        # live driver: it is not taken for a driver that is gone.
        refused = launch_from_another_host(path, tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "in use by another launch" in refused.stderr
        assert f"pid {second.pid} on " in refused.stderr
        assert second.poll() is None

        stopped = cli("stop", str(path), cwd=tmp_path)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert second.wait(timeout=120) == 130
    finally:
        if second.poll() is None:
            second.send_signal(signal.SIGKILL)
    log = driver_log(second)
    assert "lease heartbeat failed" not in log and "taken over" not in log, log
    assert lease_on_storage(experiment) is None  # released at the end

    # One driver trained: one MLflow run per trial, each epoch once, as the record has it.
    # The epochs a trial ran when the first driver was killed, after the checkpoint Ray's last
    # snapshot held, were trained again by the second (in the journal twice, once in the record
    # and MLflow); Ray's result.json lost none of them.
    dirs = {d.name: d for d in trial_dirs(experiment)}
    client, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(parents) == 1
    by_trial = {c.data.tags["trial_id"]: c for c in children}
    assert len(by_trial) == len(children) == len(dirs), (sorted(by_trial), sorted(dirs))
    for trial_id, trial_dir in dirs.items():
        journal = journaled(experiment, trial_id)
        epochs = once_each(journal)
        assert epochs == list(range(1, len(epochs) + 1)), (trial_id, journal)
        assert steps(client, by_trial[trial_id]) == epochs
        assert once_each(epochs_of(trial_dir)) == epochs, (trial_id, epochs_of(trial_dir))


# --- a driver whose lease was taken over stops and touches nothing ---------------------------

def test_a_driver_whose_lease_is_taken_over_stops_at_once_and_writes_nothing(
        tmp_path, write_spec, digits_spec, reaper, monkeypatch):
    """What a driver that was silent past the TTL (a suspended laptop, a hung NFS) finds when it
    wakes: another launch holds the experiment. It must stop training and leave the record,
    Ray's state and MLflow to that launch."""
    monkeypatch.setenv(TTL_ENV, str(TTL_S))
    spec = digits_spec(budget={"trials": 4, "max_epochs": 40}, scheduler={"type": "fifo"},
                       data=MEDIUM_DATA)
    path, experiment = write_spec(spec), tmp_path / "runs" / spec["name"]
    driver = start_launch(path, tmp_path)
    try:
        wait_for(lambda: trained(experiment, "directory") >= 1, 240, "a first epoch",
                 proc=driver)
        record = (experiment / "resnet_search.json").read_bytes()
        now = time.time()
        takeover = {"host": "node-2", "pid": 4242, "pid_start": 7.0, "since": now,
                    "heartbeat_at": now, "token": "the-new-holder"}
        (experiment / LEASE_FILE).write_text(json.dumps(takeover))  # as a takeover leaves it
        code = driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            driver.send_signal(signal.SIGKILL)
    log = driver_log(driver)
    assert code == 1, log
    assert "taken over: lost the lease of experiment" in log and "pid 4242 on node-2" in log
    assert "Traceback" not in log
    assert (experiment / "resnet_search.json").read_bytes() == record  # still "running"
    assert json.loads((experiment / LEASE_FILE).read_text())["token"] == "the-new-holder"
    from processes import ours  # its Ray went with it: nothing trains for the old driver
    wait_for(lambda: not [p for p in ours(tmp_path) if "raylet" in " ".join(p.cmdline())], 120,
             "the old driver's Ray to end")
