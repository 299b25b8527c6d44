"""An experiment's life through the real CLI (real local Ray, Optuna, MLflow on SQLite): one
driver at a time, honest endings (Ctrl+C exits 130 and resumes), exact resume (the same
trial-epochs as an uninterrupted search), a finished experiment read from its record without Ray,
no Ray process outliving a killed driver, and a locked tracking store that loses nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import yaml
from driving import (MEDIUM_DATA, NAME, PARENT_TAG, SMALL_DATA, ctrl_c, driver_log, held, results,
                     runs_of, saved_trials, small_search, start_in_terminal, start_launch, steps,
                     trial_dirs, wait_for)
from processes import kill_ours, ours

from search.experiment.location import locate
from search.experiment.record import Experiment
from search.spec.model import load_spec

def record_of(spec_path: Path) -> tuple[Experiment, object]:
    """The experiment record of a spec file, and its trial job, read as later commands do."""
    spec = load_spec(spec_path)
    location = locate(spec.name, spec.storage_path, spec.tracking.mlflow_uri, spec.data.root,
                      spec.base_dir)
    data = spec.data_config()
    data.root = location.data_root
    return Experiment(location), spec.job(data)


def first_result(experiment: Path) -> bool:
    return any(results(d) for d in trial_dirs(experiment))


# --- one driver per experiment -----------------------------------------------------------------

def test_a_second_launch_is_refused_while_the_first_runs_and_takes_over_after_a_crash(
        tmp_path, write_spec, digits_spec, cli, reaper):
    spec, path, experiment = small_search(digits_spec, write_spec)
    first = start_launch(path, tmp_path)
    try:
        wait_for(lambda: first_result(experiment), 180, "the first result", proc=first)
        with held(first):  # still running while the second launch starts, however fast
            second = cli("launch", str(path), cwd=tmp_path)
            assert first.poll() is None, "the first launch must still be running"
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"pid {first.pid}" in second.stderr and socket.gethostname() in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: its lease stays behind
        first.wait(timeout=30)
    kill_ours(tmp_path)

    third = cli("launch", str(path), cwd=tmp_path)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "took over the lease" in third.stderr and f"pid {first.pid}" in third.stderr
    assert "(resumed)" in third.stdout
    _, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(parents) == 1, [p.info.run_id for p in parents]  # one experiment, one parent
    kept = saved_trials(experiment)
    assert len(kept) == 4 and kept <= {c.data.tags["trial_id"] for c in children}


# --- honest endings -----------------------------------------------------------------------------

def test_ctrl_c_saves_the_search_exits_130_and_the_same_command_resumes_it(
        tmp_path, write_spec, digits_spec, cli, reaper):
    spec, path, experiment = small_search(digits_spec, write_spec)
    driver = start_launch(path, tmp_path)
    wait_for(lambda: any(len(results(d)) == 3 for d in trial_dirs(experiment)), 180,
             "a finished trial", proc=driver)
    code = ctrl_c(driver)
    log = driver_log(driver)
    assert code == 130, log
    assert "interrupted (SIGINT): the search is saved; run the same command again to resume" in log
    # A partial search has no result yet: nothing a script could read as the search's best.
    assert "best config:" not in log and "best checkpoint:" not in log, log
    assert "best trials of" not in log, log
    assert "Tuner.restore" not in log and "Traceback" not in log, log
    record, job = record_of(path)
    assert record.state().status.value == "interrupted"
    before = record.results(job)
    assert 0 < before.epochs_used < 4 * 3

    _, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert [p.info.status for p in parents] == ["KILLED"]
    assert parents[0].data.tags["state"] == "interrupted"
    unfinished = [c for c in children if c.data.tags.get("outcome") == "killed"]
    assert all(c.info.status == "KILLED" and c.data.tags["reason"] == "interrupted"
               for c in unfinished), [c.data.tags for c in unfinished]
    assert all(c.info.status != "RUNNING" for c in children)

    again = cli("launch", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout
    after = record.results(job)
    assert record.state().status.value == "finished"
    assert len(after.trials) == 4
    assert all([r["epoch"] for r in t.results] == [1, 2, 3] for t in after.trials)
    def trained(trial) -> list:  # a re-trained epoch would take another epoch_seconds
        return [(r["epoch"], r["val_acc"], r["epoch_seconds"]) for r in trial.results]

    for trial in before.trials:  # what was done before Ctrl+C was kept, not run again
        same = next(t for t in after.trials if t.trial_id == trial.trial_id)
        assert trained(same)[:len(trial.results)] == trained(trial)

    client, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(c.data.tags["trial_id"] for c in children) == sorted(
        t.trial_id for t in after.trials)  # one run per trial, none twice
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["outcome"] == "completed"
        assert steps(client, child) == [1, 2, 3]  # every epoch once
    # The parent's summary is the true best of the whole search, not of the interrupted part.
    best = after.best
    assert parents[0].data.tags["best_trial_id"] == best.trial_id
    assert parents[0].data.metrics["best_val_acc"] == pytest.approx(best.best)


def test_a_closed_terminal_saves_the_search_exits_129_and_the_same_command_resumes_it(
        tmp_path, write_spec, digits_spec, cli, reaper):
    """An SSH session drops: the launch's terminal hangs up (the kernel's SIGHUP to the session
    leader) and the shell passes SIGHUP on to the job's process group, where Ray's GCS and
    raylet run beside the driver."""
    spec, path, experiment = small_search(digits_spec, write_spec)
    driver, terminal = start_in_terminal(path, tmp_path)
    try:
        wait_for(lambda: any(len(results(d)) == 3 for d in trial_dirs(experiment)), 180,
                 "a finished trial", proc=driver)
        terminal.hang_up()
        os.killpg(driver.pid, signal.SIGHUP)
        code = driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        terminal.hang_up()
    assert code == 129, driver_log(driver)
    record, job = record_of(path)
    state = record.state()
    assert (state.status.value, state.reason) == ("interrupted", "SIGHUP")
    log = (experiment / "launch.log").read_text()  # what was printed after the hang-up too
    assert "launch ended: " in log and "Traceback" not in log, log
    _, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert [(p.info.status, p.data.tags["state"]) for p in parents] == [("KILLED",
                                                                         "interrupted")]
    assert all(c.info.status != "RUNNING" for c in children)

    again = cli("launch", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout and record.state().status.value == "finished"
    assert all([r["epoch"] for r in t.results] == [1, 2, 3]
               for t in record.results(job).trials)


# --- exact resume: tests/e2e/test_one_driver.py (a search killed twice spends what an
# uninterrupted one spends; its first kill is this file's former killed-once case) -------------

# --- a finished experiment, a changed spec, a damaged record: read without Ray -----------------

@pytest.mark.ray  # launches in its body
def test_a_finished_experiment_is_read_from_its_record_from_any_directory(
        tmp_path, digits_spec, cli):
    home = tmp_path / "project"
    home.mkdir()
    spec = digits_spec(budget={"trials": 2, "max_epochs": 1}, scheduler={"type": "fifo"},
                       data=SMALL_DATA,
                       # Relative paths: the spec file's directory, not the cwd, anchors them.
                       storage_path="runs", tracking={"mlflow_uri": "sqlite:///mlflow.db"})
    path = home / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    first = cli("launch", "spec.yaml", cwd=home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (home / "runs" / NAME / "resnet_search.json").exists()
    assert (home / "mlflow.db").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = cli("launch", str(path), cwd=elsewhere)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "finished earlier" in again.stderr and "--name" in again.stderr
    table = first.stdout[first.stdout.index("best trials"):first.stdout.index("experiment state")]
    assert table in again.stdout  # the same table, from the record
    assert not (elsewhere / ".ray").exists() and not ours(elsewhere)  # Ray was never started
    assert not (elsewhere / "runs").exists() and not (elsewhere / "mlflow.db").exists()

    changed = cli("launch", str(path), "--trials", "1", cwd=elsewhere)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "budget.trials: 2 -> 1 (a budget can be raised" in changed.stderr
    assert "--name" in changed.stderr
    assert "Traceback" not in changed.stderr

    state = home / "runs" / NAME / "resnet_search.json"
    state.write_text(state.read_text()[:20])  # truncated mid-write
    damaged = cli("launch", str(path), cwd=elsewhere)
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert str(state) in damaged.stderr and "Traceback" not in damaged.stderr


# --- nothing of a killed driver's Ray outlives it ----------------------------------------------

def test_no_process_of_a_sigkilled_drivers_ray_is_left_behind(
        tmp_path, write_spec, digits_spec, reaper):
    _, path, experiment = small_search(digits_spec, write_spec)
    driver = start_launch(path, tmp_path)
    try:
        wait_for(lambda: first_result(experiment), 180, "the first result", proc=driver)
        assert len(ours(tmp_path)) > 3  # the driver and its Ray: GCS, raylet, agents, workers
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    # Found here by the HOME this test gave them; the product finds them by its session token.
    left = wait_for(lambda: not ours(tmp_path), 120, "the killed driver's Ray to end")
    assert left


# --- a tracking store locked for 30 s mid-search ------------------------------------------------

# Longer than SQLite's busy timeout (20 s, set by MLflow): writes fail and are retried.
LOCK_S = 30


def test_a_locked_tracking_store_neither_slows_training_nor_loses_an_epoch(
        tmp_path, write_spec, digits_spec, reaper):
    spec = digits_spec(budget={"trials": 6, "max_epochs": 12}, scheduler={"type": "fifo"},
                       data=MEDIUM_DATA)
    path = write_spec(spec)
    experiment = Path(spec["storage_path"]) / NAME
    db = spec["tracking"]["mlflow_uri"].removeprefix("sqlite:///")
    driver = start_launch(path, tmp_path)
    try:
        wait_for(lambda: first_result(experiment), 180, "the first result", proc=driver)
        holder = sqlite3.connect(db, isolation_level=None, timeout=60)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the store
        locked_at = time.time()
        time.sleep(LOCK_S)
        released_at = time.time()
        holder.execute("COMMIT")
        holder.close()
        assert driver.poll() is None, "the search must outlast the lock: " + driver_log(driver)
        assert driver.wait(timeout=600) == 0, driver_log(driver)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    record, job = record_of(path)
    done = record.results(job)
    # Training went on while MLflow could not be written. A trial hands each epoch's result to
    # the driver and waits until the driver takes it (Tune's function API), so a driver stuck on
    # the store would have let each of the 2 running trials (1 CPU each) report at most twice in
    # the window: more than that is training that did not wait, however slow a loaded machine is.
    during = [r for t in done.trials for r in t.results
              if locked_at + 1 < r["timestamp"] < released_at]
    assert len(during) > 2 * 2, len(during)
    client, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    by_trial = {c.data.tags["trial_id"]: c for c in children}
    assert sorted(by_trial) == sorted(t.trial_id for t in done.trials)
    for trial in done.trials:
        epochs = [r["epoch"] for r in trial.results]
        for metric in ("val_acc", "train_loss"):
            assert steps(client, by_trial[trial.trial_id], metric) == epochs, (trial.trial_id,
                                                                               metric)
    assert PARENT_TAG in children[0].data.tags
