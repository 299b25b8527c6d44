"""The search methods issue 20 added, each in a real launch through the CLI (real Ray, Optuna,
MLflow on SQLite, real digits): PASHA with random proposals and promotion ASHA with BOHB's
sampler, as the README pairs them. Each pauses trials at its rungs and resumes promoted ones
from their checkpoint, each epoch reported once; the trials still waiting when the search ends
are stopped, and the record, the progress lines and MLflow all name the scheduler that did it
(from its registry entry). DEHB, whose own sampler gives each trial its epochs, trains each
trial for one of its budgets and stops it there. The promotion ASHA search killed and resumed is
in test_exact_resume.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from driving import SMALL_DATA, journaled, runs_of, steps

from search.experiment.record import Experiment
from search.spec.outcome import Outcome
from search.spec.schedulers import SCHEDULERS

MAX_EPOCHS = 4
# 6 trials, rungs at epochs 1 and 2 (factor 2): most trials wait at a rung when the search ends.
METHODS = [
    ({"type": "pasha", "grace_period": 1, "reduction_factor": 2}, {"type": "random", "seed": 0}),
    ({"type": "promotion_asha", "grace_period": 1, "reduction_factor": 2},
     {"type": "bohb", "seed": 0}),
]


@pytest.mark.parametrize("scheduler, sampler", METHODS, ids=[s["type"] for s, _ in METHODS])
def test_a_method_pauses_promotes_and_stops_trials_in_a_real_launch(
        scheduler, sampler, tmp_path, digits_spec, write_spec, cli, reaper):
    spec = digits_spec(budget={"trials": 6, "max_epochs": MAX_EPOCHS}, data=SMALL_DATA,
                       scheduler=scheduler, sampler=sampler,
                       trial={"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0,
                              "max_concurrent": 2})
    path = write_spec(spec)
    label = SCHEDULERS[scheduler["type"]].label
    launched = cli("launch", str(path), cwd=tmp_path)
    output = launched.stdout + launched.stderr
    assert launched.returncode == 0, output[-4000:]
    assert f"sampler {sampler['type']}, scheduler {scheduler['type']}" in output

    experiment = Path(spec["storage_path"]) / spec["name"]
    recorded = {t.trial_id: t for t in Experiment.open(experiment).recorded_results().trials}
    assert len(recorded) == 6
    assert {t.status for t in recorded.values()} == {"TERMINATED"}  # also those paused at the end

    # Promoted from a rung: resumed from its checkpoint, each epoch reported once (the driver's
    # journal of every result it saw, and MLflow's steps).
    resumed = dict(re.findall(r" resume (\w+) after epoch (\d+)", output))
    assert resumed, output[-4000:]
    client, _, children = runs_of(spec["tracking"]["mlflow_uri"])
    runs = {child.data.tags["trial_id"]: child for child in children}
    assert set(runs) == set(recorded)
    for trial_id, trial in recorded.items():
        journal = journaled(experiment, trial_id)
        assert journal == list(range(1, trial.epochs + 1)), (trial_id, journal)
        assert steps(client, runs[trial_id]) == journal
    for trial_id, paused_at in resumed.items():
        assert recorded[trial_id].epochs > int(paused_at)

    # Waiting at a rung when the search ended: stopped by this scheduler, everywhere.
    stopped = {t for t, trial in recorded.items() if trial.outcome is Outcome.STOPPED}
    assert stopped, output[-4000:]
    said = dict(re.findall(rf"\] (\w+) stopped by {re.escape(label)} after (\d+)/"
                           rf"{MAX_EPOCHS} epochs", output))
    assert set(said) == stopped, output[-4000:]
    for trial_id in stopped:
        tags = runs[trial_id].data.tags
        assert (tags["outcome"], tags["stopped_by"]) == ("stopped", scheduler["type"])
        assert int(tags["stopped_at_epoch"]) == recorded[trial_id].epochs == int(said[trial_id])
        assert recorded[trial_id].epochs < MAX_EPOCHS


def test_dehb_trains_each_trial_for_the_budget_it_gave_in_a_real_launch(
        tmp_path, digits_spec, write_spec, cli, reaper):
    # max_epochs 4 at factor 3: budgets of 1 and 4 epochs; DEHB's first bracket starts 3 trials
    # at 1 epoch and takes the best to 4, its second starts 2 at 4.
    spec = digits_spec(budget={"trials": 6, "max_epochs": MAX_EPOCHS}, data=SMALL_DATA,
                       scheduler={"type": "dehb"}, sampler={"type": "dehb", "seed": 0},
                       trial={"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0,
                              "max_concurrent": 2})
    path = write_spec(spec)
    launched = cli("launch", str(path), cwd=tmp_path)
    output = launched.stdout + launched.stderr
    assert launched.returncode == 0, output[-4000:]
    assert "sampler dehb, scheduler dehb" in output
    assert not list(tmp_path.glob("**/dehb_*.log"))  # the package's log file, kept out

    experiment = Path(spec["storage_path"]) / spec["name"]
    recorded = {t.trial_id: t for t in Experiment.open(experiment).recorded_results().trials}
    assert len(recorded) == 6
    epochs = sorted(t.epochs for t in recorded.values())
    assert epochs == [1, 1, 1, 4, 4, 4], epochs
    stopped = {t for t, trial in recorded.items() if trial.outcome is Outcome.STOPPED}
    assert stopped == {t for t, trial in recorded.items() if trial.epochs == 1}
    said = dict(re.findall(rf"\] (\w+) stopped by DEHB after (\d+)/{MAX_EPOCHS} epochs",
                           output))
    assert set(said) == stopped, output[-4000:]
    client, _, children = runs_of(spec["tracking"]["mlflow_uri"])
    runs = {child.data.tags["trial_id"]: child for child in children}
    for trial_id, trial in recorded.items():
        journal = journaled(experiment, trial_id)
        assert journal == list(range(1, trial.epochs + 1)), (trial_id, journal)
        assert steps(client, runs[trial_id]) == journal
        tags = runs[trial_id].data.tags
        if trial_id in stopped:
            assert (tags["outcome"], tags["stopped_by"]) == ("stopped", "dehb")
        else:
            assert tags["outcome"] == "completed"
