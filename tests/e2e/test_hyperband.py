"""`scheduler: {type: hyperband}` through the real CLI, Ray, Optuna and MLflow: Ray's synchronous
HyperBand pauses a trial at a rung, runs it on from its checkpoint, stops others early, and every
part of the product says so from the registry entry (validate's summary, the progress lines,
MLflow's tags, the record)."""

from __future__ import annotations

import re
from pathlib import Path

from driving import SMALL_DATA, journaled, runs_of, steps

from search.spec.outcome import Outcome
from search.experiment.record import Experiment

# 5 epochs at factor 2: brackets [] | [2, 4] | [1, 2, 4] of 3, 3 and 4 trials, and 5 trials out
# at once. The first 3 fill the first bracket and run the budget; the last 2 are the second
# bracket's: the first of them to reach epoch 2 waits paused until the other does, both go on
# (2 of its 3 places go on), and both stop at epoch 4. So whatever the timing (replayed over
# 100 random ones): a trial paused and resumed, and two stopped early.
HYPERBAND = {"type": "hyperband", "reduction_factor": 2}
SPACE = {"lr": {"float": [0.01, 0.1], "log": True}}  # nothing diverges: each trial runs its turn


def test_hyperband_pauses_resumes_and_stops_trials_and_every_part_says_so(
        tmp_path, digits_spec, write_spec, cli, reaper):
    spec = digits_spec(budget={"trials": 5, "max_epochs": 5}, scheduler=HYPERBAND,
                       data=SMALL_DATA, space=SPACE)
    path = write_spec(spec)
    checked = cli("validate", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ("scheduler hyperband (Hyperband rungs at epochs [] | [2, 4] | [1, 2, 4], one list "
            "per bracket)") in checked.stdout

    launched = cli("launch", str(path), cwd=tmp_path)
    output = launched.stdout + launched.stderr
    assert launched.returncode == 0, output[-4000:]
    resumed = dict(re.findall(r" resume (\w+) after epoch (\d+)", output))
    said_stopped = dict(re.findall(r"\] (\w+) stopped by Hyperband after (\d+)/5 epochs", output))
    assert resumed, output[-4000:]

    experiment = Path(spec["storage_path"]) / spec["name"]
    recorded = {t.trial_id: t for t in Experiment.open(experiment).recorded_results().trials}
    client, _, children = runs_of(spec["tracking"]["mlflow_uri"])
    runs = {child.data.tags["trial_id"]: child for child in children}
    assert set(runs) == set(recorded) and len(recorded) == 5
    # Ended, all of them, also those Tune stopped while they were paused (Ray's snapshot would
    # keep those PAUSED: unfinished to `status`, the report and the study).
    assert {t.status for t in recorded.values()} == {"TERMINATED"}

    # Stopped early by Hyperband: in the record, on the progress lines and in MLflow alike.
    stopped = {t for t, trial in recorded.items() if trial.outcome is Outcome.STOPPED}
    assert len(stopped) == 2 and set(said_stopped) == stopped, output[-4000:]
    for trial_id in stopped:
        tags = runs[trial_id].data.tags
        assert (tags["outcome"], tags["stopped_by"]) == ("stopped", "hyperband")
        assert int(tags["stopped_at_epoch"]) == recorded[trial_id].epochs == int(
            said_stopped[trial_id]) == 4
        assert runs[trial_id].info.status == "FINISHED"
    # The first bracket's trials ran the budget (each paused at its last epoch until the others
    # got there, then stopped by Tune: completed, not killed).
    assert sorted(t.outcome.value for t in recorded.values()) == ["completed"] * 3 + [
        "stopped"] * 2

    # A trial paused and run on from its checkpoint reported each epoch once: in the driver's
    # journal of every result it saw, and in MLflow.
    for trial_id, paused_at in resumed.items():
        journal = journaled(experiment, trial_id)
        assert journal == list(range(1, recorded[trial_id].epochs + 1))
        assert recorded[trial_id].epochs > int(paused_at)  # it went on after the pause
        assert steps(client, runs[trial_id]) == journal
