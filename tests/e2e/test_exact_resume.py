"""A search killed twice and resumed decides exactly as an uninterrupted one, through the real
CLI (real Ray, Optuna, MLflow on SQLite, real digits): with stopping ASHA and with promotion
ASHA, whose trials wait paused at a rung holding no slot and go on from their checkpoint. Its
own file so that pytest-xdist (`--dist loadfile`) runs it beside the lease tests of
test_one_driver.py, not after them."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
from driving import SMALL_DATA, epochs_of, journaled, kill_driver, once_each, saved_statuses, \
    start_launch, trial_dirs, wait_for


def epochs_by_config(experiment: Path) -> dict[str, int]:
    """Configuration -> the epochs it was trained, as the record has them (an epoch trained
    again after a driver was killed counted once)."""
    return {json.dumps(json.loads((d / "params.json").read_text()), sort_keys=True):
            len(once_each(journaled(experiment, d.name))) for d in trial_dirs(experiment)}


def ended(experiment: Path) -> int:
    return sum(status == "TERMINATED" for status in saved_statuses(experiment).values())


def begun(experiment: Path) -> int:
    return len(saved_statuses(experiment))


# How far the killed search gets before each kill, as Ray's saved snapshot shows it. Stopping
# ASHA ends trials as it goes; promotion ASHA pauses them at its rungs and ends few before the
# search does, so there the kills come after 3 and 6 of the 8 trials have begun.
KILLED_AT = {"asha": (ended, 2, 5), "promotion_asha": (begun, 3, 6)}


@pytest.mark.parametrize("scheduler", sorted(KILLED_AT))
def test_a_search_killed_twice_spends_what_an_uninterrupted_one_spends(
        scheduler, tmp_path, write_spec, digits_spec, cli, reaper):
    """One trial at a time, a seeded sampler, exact resume from checkpoints: the trial-epochs
    each configuration gets depend only on the scheduler's rungs. The suite's exact-resume
    test: a first resume that lost the rungs (or the sampler's state) changes what the
    configurations get after the first kill; a crash during the resumed part used to leave the
    scheduler's record at its restore-time copy, so the rungs of that part were lost and the
    next resume stopped (or kept) other trials. With promotion ASHA a trial waits paused at a
    rung, holding no slot, and goes on from its checkpoint when promoted: one waiting when the
    driver dies must be resumed as paused and promoted as the uninterrupted search promotes it,
    with no epoch lost or trained twice."""
    search = dict(budget={"trials": 8, "max_epochs": 4}, data=SMALL_DATA,
                  trial={"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0,
                         "max_concurrent": 1},
                  scheduler={"type": scheduler, "grace_period": 1, "reduction_factor": 2})
    progress, first, second = KILLED_AT[scheduler]
    straight = digits_spec(**search, name="straight")
    done = cli("launch", str(write_spec(straight, "straight.yaml")), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = epochs_by_config(tmp_path / "runs" / "straight")
    assert len(expected) == 8 and len(set(expected.values())) > 1  # rungs ended some early
    if scheduler == "promotion_asha":  # trials waited paused and went on when promoted
        assert re.search(r" resume \w+ after epoch \d", done.stdout + done.stderr), done.stdout

    killed = digits_spec(**search, name="killed")
    path, experiment = write_spec(killed, "killed.yaml"), tmp_path / "runs" / "killed"
    driver = start_launch(path, tmp_path)
    wait_for(lambda: progress(experiment) >= first, 300, f"{first} trials", proc=driver)
    kill_driver(driver, tmp_path)
    driver = start_launch(path, tmp_path)  # the resumed part: killed again in the middle
    try:
        wait_for(lambda: progress(experiment) >= second, 300, f"{second} trials", proc=driver)
        kill_driver(driver, tmp_path)
    finally:
        if driver.poll() is None:
            driver.send_signal(signal.SIGKILL)
    done = cli("launch", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(resumed)" in done.stdout
    assert epochs_by_config(experiment) == expected
    again = []
    for trial in trial_dirs(experiment):  # each epoch once, in order, however often resumed
        journal = journaled(experiment, trial.name)
        epochs = once_each(journal)
        assert epochs == list(range(1, len(epochs) + 1)), (trial.name, journal)
        # Ray's own file lost none (search/run/trialfiles.py: a paused trial promoted before
        # Ray's sync lost its reports since)
        assert once_each(epochs_of(trial)) == epochs, (trial.name, epochs_of(trial))
        if len(journal) > len(epochs):
            again.append(trial.name)
    # Only the trial running when a driver died (one at a time) trains epochs again: those
    # after the checkpoint Ray's last snapshot held. A paused trial resumed from scratch, or
    # every trial restarted, would be many.
    assert len(again) <= 2, again
