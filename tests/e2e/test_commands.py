"""`status`, `logs`, `list` and `stop` on a local search, through the real CLI from another
process: what a user does in a second shell while a search runs, then the same launch resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from driving import (MEDIUM_DATA, cli_env, epochs_of, held, results, runs_of, start_launch, steps,
                     trial_dirs, wait_for)
from processes import ours

from search.experiment.stop import STOP_FILE
from search.experiment.storage import as_path


def as_json(result) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def first_epoch(experiment, kind: str) -> bool:
    """A trial has reported an epoch, as `status` will see it. On S3 the driver uploads results
    every 15 s, so there: a trial's first checkpoint, which its worker writes to the bucket at
    once (on a directory the worker writes it before the driver records the epoch: too early
    for `status`)."""
    if kind == "directory":
        return any(len(results(d)) >= 1 for d in trial_dirs(experiment))
    ray = experiment / "ray"
    return ray.is_dir() and any(
        child.name.startswith("checkpoint_") for trial in ray.iterdir() if trial.is_dir()
        for child in trial.iterdir())


def test_a_running_search_is_seen_stopped_from_another_shell_and_resumed(
        tmp_path, write_spec, digits_spec, cli, reaper, storage):
    # Long enough that the search is still running when `stop` comes (a CLI call takes seconds).
    spec = digits_spec(budget={"trials": 4, "max_epochs": 5}, scheduler={"type": "fifo"},
                       data=MEDIUM_DATA,
                       storage_path=storage.path)
    path, experiment = write_spec(spec), as_path(storage.path) / spec["name"]
    driver = start_launch(path, tmp_path)
    try:
        wait_for(lambda: first_epoch(experiment, storage.kind), 180, "a first epoch",
                 proc=driver)
        # Held still while a second shell looks at it and asks it to stop: the CLI calls take
        # seconds on a loaded machine, and this search must not end first.
        with held(driver):
            status = as_json(cli("status", str(path), "--json", cwd=tmp_path))
            running = status["experiment"]
            assert running["status"] == "running" and running["driver"].startswith(
                f"pid {driver.pid} ")
            assert running["trials_budget"] == 4 and running["epochs_budget"] == 4 * 5
            if storage.kind == "directory":  # S3: Ray uploads trials' results every 15 s
                assert running["trials"]["running"] >= 1 and running["epochs_used"] >= 1
                # `trials` reads a running trial as `status` counts it: running, never killed
                # (nothing kills a trial of this search).
                listed = as_json(cli("trials", str(path), "--json", cwd=tmp_path))
                shown = {t["outcome"] for t in listed["trials"] if t["status"] == "RUNNING"}
                table = cli("trials", str(path), cwd=tmp_path)
                assert shown == {"running"} and "killed" not in table.stdout, (listed,
                                                                              table.stdout)
            stopper = subprocess.Popen(
                [sys.executable, "-m", "search.cli", "stop", str(path), "--json"], cwd=tmp_path,
                env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for(lambda: stopper.poll() is not None or (experiment / STOP_FILE).exists(),
                     0, "the stop request", proc=stopper)  # as long as `stop` runs
            time.sleep(2)  # the driver looks every second (search/run/interrupt.py StopWatch)
        out, err = stopper.communicate()
        stopped = subprocess.CompletedProcess(stopper.args, stopper.returncode, out, err)
        assert "asked the driver" in stopped.stderr
        assert as_json(stopped)["experiment"]["status"] == "interrupted"  # it waited
        code = driver.wait(timeout=60)  # `stop` waited for it: it has ended already
    finally:
        if driver.poll() is None:
            driver.send_signal(signal.SIGKILL)
    assert code == 130  # interrupted, never 0
    # By directory, from anywhere: the same experiment.
    by_dir = as_json(cli("status", str(experiment), "--json", cwd=Path("/")))
    assert by_dir["experiment"]["directory"] == str(experiment)

    listed = as_json(cli("list", storage.path, "--json", cwd=tmp_path))
    assert [e["name"] for e in listed["experiments"]] == [spec["name"]]

    logs = cli("logs", str(path), cwd=tmp_path)
    assert logs.returncode == 0 and "=== launch on " in logs.stdout
    assert "start " in logs.stdout  # the progress lines the terminal showed
    lines = cli("logs", str(experiment), "--json", cwd=tmp_path)
    pieces = [json.loads(line) for line in lines.stdout.splitlines()]
    assert {p["source"] for p in pieces} == {str(experiment)}
    # the same, one object per line, for scripts
    assert [p["text"] for p in pieces] == logs.stdout.removesuffix("\n").split("\n")

    status = as_json(cli("status", str(path), "--json", cwd=tmp_path))
    interrupted = status["experiment"]
    assert interrupted["status"] == "interrupted" and interrupted["driver"] is None
    assert interrupted["reason"].startswith("stop requested by ")
    assert interrupted["epochs_used"] < 4 * 5
    assert not (experiment / "stop-request.json").exists()  # obeyed, then cleared

    nothing = cli("stop", str(path), cwd=tmp_path)
    assert nothing.returncode == 1 and "has no running driver" in nothing.stderr

    again = cli("launch", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout
    done = as_json(cli("status", str(path), "--json", cwd=tmp_path))["experiment"]
    assert done["status"] == "finished" and done["trials"]["completed"] == 4
    assert done["epochs_used"] == 4 * 5 and done["eta_s"] is None
    assert all(epochs_of(d) == [1, 2, 3, 4, 5] for d in trial_dirs(experiment))
    client, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(parents) == 1 and len(children) == 4  # one run per trial, none twice
    assert all(steps(client, child) == [1, 2, 3, 4, 5] for child in children)
    log = (experiment / "launch.log").read_text()
    assert log.count("=== launch on ") == 2  # one story across the resume
    assert not ours(tmp_path)


def test_status_of_nothing_says_so(tmp_path, cli):
    missing = cli("status", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "neither a spec file nor an experiment directory" in (
        missing.stderr)
    empty = cli("status", str(tmp_path), cwd=tmp_path)
    assert empty.returncode == 1 and "holds no experiment record" in empty.stderr
    assert "Traceback" not in missing.stderr + empty.stderr


# A record file a disk error, a stray editor or a copy cut short left behind.
DAMAGED = {"not UTF-8": b"\xff\xfe{\"format\": 2}", "not JSON": b"{\"format\": 2, \"name\": "}


@pytest.mark.parametrize("command", ["status", "trials", "logs", "report", "export-best", "ui"])
def test_a_damaged_record_of_an_experiment_directory_is_named_in_one_line(command, tmp_path,
                                                                         cli):
    directory = tmp_path / "runs" / "damaged"
    directory.mkdir(parents=True)
    (directory / "launch.log").write_text("=== launch ===\n")
    for damage, content in DAMAGED.items():
        (directory / "resnet_search.json").write_bytes(content)
        shown = cli(command, str(directory), cwd=tmp_path)
        assert shown.returncode == 1, (damage, shown.stdout + shown.stderr)
        [line] = shown.stderr.strip().splitlines()
        assert line.startswith("damaged experiment record: ") and "Traceback" not in line
        assert f"{directory / 'resnet_search.json'} is damaged" in line  # the file
        assert "restore resnet_search.json from a backup" in line  # and what to do
