"""What `status` and `list` say: the pure rules as tables, then a real Ray experiment's record."""

import shutil
from dataclasses import replace

import pytest
from trials import trial_record

from search.experiment.location import Location
from search.experiment.record import Experiment, NoExperiment, experiments_in
from search.experiment.results import Results
from search.experiment.state import State, Status
from search.experiment.summary import (KINDS, eta, job_of_saved, kind_of, status_of,
                                       summarize)
from search.spec.outcome import Outcome

SPEC = {"budget": {"trials": 6, "max_epochs": 4}, "objective": {"metric": "val_acc",
                                                                "mode": "max"},
        "fixed": {"depth": 20}, "data": {"dataset": "digits", "val_fraction": 0.2}}


def trial(trial_id="t", status="TERMINATED", outcome=Outcome.COMPLETED, epochs=4, best=0.5,
          params=None):
    """A trial whose objective was `best` at each of its `epochs`."""
    return trial_record(trial_id, [best] * epochs, outcome, params=params or {"lr": 0.1},
                        status=status)


def state(status=Status.RUNNING, created=1000.0, updated=1100.0, reason=None):
    return State(name="x", spec_hash="h", parent_run_id="p", tracking_uri="sqlite:///m.db",
                 status=status, created_at=created, updated_at=updated, reason=reason)


@pytest.mark.parametrize("status, outcome, live, kind", [
    ("RUNNING", Outcome.COMPLETED, True, "running"),
    ("RUNNING", Outcome.COMPLETED, False, "pending"),  # saved as running, no driver: resumes
    ("PENDING", Outcome.COMPLETED, True, "pending"),
    ("PAUSED", Outcome.COMPLETED, True, "pending"),
    ("ERROR", Outcome.FAILED, True, "failed"),
    ("TERMINATED", Outcome.COMPLETED, True, "completed"),
    ("TERMINATED", Outcome.STOPPED, True, "stopped"),
    ("TERMINATED", Outcome.KILLED, True, "killed"),
    ("TERMINATED", Outcome.DIVERGED, True, "failed"),
    ("TERMINATED", Outcome.OOM, True, "failed"),
    ("TERMINATED", Outcome.INVALID, True, "failed"),
])
def test_which_count_a_trial_goes_into(status, outcome, live, kind):
    assert kind_of(trial(status=status, outcome=outcome), live) == kind


@pytest.mark.parametrize("status, outcome, live, shown", [
    # outcome_of calls a trial short of its budget `killed`: not while it runs or waits
    ("RUNNING", Outcome.KILLED, True, "running"),
    ("RUNNING", Outcome.KILLED, False, "pending"),
    ("PENDING", Outcome.KILLED, True, "pending"),
    ("PAUSED", Outcome.KILLED, False, "pending"),
    ("TERMINATED", Outcome.KILLED, True, "killed"),
    ("TERMINATED", Outcome.DIVERGED, True, "diverged"),  # `trials` keeps the kind of failure
    ("ERROR", Outcome.FAILED, False, "failed"),
])
def test_how_a_trial_reads_in_trials_agrees_with_the_status_counts(status, outcome, live, shown):
    read = trial(status=status, outcome=outcome, epochs=2)
    assert read.shown(live) == shown and read.as_json(live)["outcome"] == shown
    assert kind_of(read, live) == (shown if shown in KINDS else "failed")


@pytest.mark.parametrize("recorded, driver, stop, shown", [
    (Status.RUNNING, "pid 1 on h", False, "running"),
    (Status.RUNNING, "pid 1 on h", True, "stopping"),
    (Status.RUNNING, None, False, "crashed"),  # no live lease: the driver died
    (Status.INTERRUPTED, None, False, "interrupted"),
    (Status.FINISHED, None, False, "finished"),
    (Status.ABORTED, None, False, "aborted"),
])
def test_the_status_shown(recorded, driver, stop, shown):
    assert status_of(state(recorded), driver, stop) == shown


@pytest.mark.parametrize("ended, running, not_ended, left", [
    # 2 epochs per ended trial; the running one at epoch 1 is expected to go as far as the
    # ended trials that got past epoch 1 (3: 2 more); 3 to start x 2 = 6; 8 epochs in all
    ([1, 3], [1], 4, 8.0),
    # the running trial has outlived every ended one: it runs to max_epochs (6 - 4 = 2)
    ([1, 1], [4], 3, 1.0 * 2 + 2.0),
    # nothing left to start, the survivor at the last epoch: 0
    ([1, 2], [6], 1, 0.0),
    # two survivors past the ended trials' average (the one that got to 4 sets their pace),
    # three to start
    ([1, 1, 4], [2, 3], 5, 2.0 * 3 + 2.0 + 1.0),
])
def test_eta_from_the_epoch_rate_and_what_ended_trials_spent(ended, running, not_ended, left):
    done = [trial(epochs=e) for e in ended]
    live = [trial(status="RUNNING", epochs=e) for e in running]
    # 5 epochs in 10 s: 0.5 epoch/s
    assert eta(5, 10.0, done, live, not_ended=not_ended, max_epochs=6) == pytest.approx(
        left / 0.5)


def test_no_eta_before_a_trial_ended_or_an_epoch_ran():
    running = [trial(status="RUNNING", epochs=1)]
    assert eta(5, 10.0, [], running, not_ended=4, max_epochs=6) is None  # no basis yet
    assert eta(0, 10.0, [trial(epochs=1)], running, not_ended=4, max_epochs=6) is None


def test_summary_of_a_running_search():
    results = Results(metric="val_acc", mode="max", trials=[
        trial("a", best=0.9, params={"lr": 0.01}), trial("b", outcome=Outcome.STOPPED, epochs=1,
                                                         best=0.3),
        trial("c", status="RUNNING", epochs=2, best=0.5)])
    s = summarize("x", "/r/x", state(), results, SPEC, "pid 1 on h", False, now=1060.0)
    assert s.status == "running" and s.driver == "pid 1 on h"
    assert s.trials == {"running": 1, "pending": 0, "completed": 1, "stopped": 1, "killed": 0,
                        "failed": 0, "to start": 3}
    assert (s.epochs_used, s.epochs_budget, s.elapsed_s) == (7, 24, 60.0)
    assert s.best == {"trial_id": "a", "value": 0.9, "epochs": 4, "params": {"lr": 0.01}}
    assert s.eta_s is not None and s.eta_s > 0
    ended = summarize("x", "/r/x", state(Status.FINISHED), results, SPEC, None, False,
                      now=5000.0)
    # An ended search: elapsed until its last update, no ETA, nothing "to start".
    assert (ended.elapsed_s, ended.eta_s, ended.trials["to start"]) == (100.0, None, 0)
    assert ended.as_json()["trials"]["completed"] == 1


def test_the_job_of_a_saved_spec_needs_no_pydantic():
    job = job_of_saved(SPEC)
    assert (job.max_epochs, job.metric, job.mode, job.fixed) == (4, "val_acc", "max",
                                                                  {"depth": 20})
    assert job.data.dataset == "digits"


def test_the_summary_of_a_real_ray_experiment(ray_experiment, tmp_path):
    directory = tmp_path / "exp"
    shutil.copytree(ray_experiment.directory, directory)
    location = Location(storage=tmp_path, directory=directory, tracking_uri="sqlite:///m.db",
                        data_root="")
    experiment = Experiment(location)
    with pytest.raises(NoExperiment, match="resnet_search.json"):
        Experiment.open(directory)  # Ray's files alone are no experiment of ours
    experiment.save_state(state(Status.FINISHED))
    with pytest.raises(NoExperiment, match="spec.json"):
        experiment.summary()
    experiment.save_spec({**SPEC, "budget": {"trials": 6, "max_epochs": 4}})
    plan = ray_experiment.plan
    experiment.save_scheduler_state({"stopped": [ray_experiment.trial_of(lr)
                                                 for lr in plan.STOPPED]})
    summary = Experiment.open(directory).summary()
    # ray_experiment.py: 6 trials; 2 stopped by ASHA at epoch 1, one diverged, one raised.
    assert summary.trials == {"running": 0, "pending": 0, "completed": 2, "stopped": 2,
                              "killed": 0, "failed": 2, "to start": 0}
    assert summary.best["params"]["lr"] == plan.BEST
    assert experiments_in(tmp_path) == [directory]
    assert replace(summary, extra={}).name == "exp"


def test_trials_prints_every_trial_of_the_record(ray_experiment, tmp_path):
    """`resnet-search trials DIR [--json]`: the record's own spec reads Ray's files; the JSON is
    the same trials, best first, as the reader gives."""
    import json

    from typer.testing import CliRunner

    from search.cli import app

    directory = tmp_path / "exp"
    shutil.copytree(ray_experiment.directory, directory)
    runner = CliRunner()
    missing = runner.invoke(app, ["trials", str(directory)])
    assert missing.exit_code == 1 and "resnet_search.json" in missing.output
    experiment = Experiment(Location(storage=tmp_path, directory=directory,
                                     tracking_uri="sqlite:///m.db", data_root=""))
    experiment.save_state(state(Status.FINISHED))
    experiment.save_spec(SPEC)
    expected = experiment.recorded_results()

    shown = runner.invoke(app, ["trials", str(directory), "--json"])
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.output)
    assert (listed["experiment"], listed["metric"], listed["mode"]) == ("exp", "val_acc", "max")
    trials = listed["trials"]
    assert [t["trial_id"] for t in trials] == [t.trial_id for t in expected.trials]
    assert len(trials) == 6 and trials[0]["params"]["lr"] == ray_experiment.plan.BEST
    assert trials[0]["best"] == max(t["best"] for t in trials if t["best"] is not None)
    assert trials[0]["curve"] == [[e, v] for e, v in expected.trials[0].curve()]
    assert trials[0]["checkpoint"].startswith(str(directory))
    failed = [t for t in trials if t["outcome"] in ("failed", "diverged")]
    assert failed and all(t["status"] in ("ERROR", "TERMINATED") for t in failed)

    table = runner.invoke(app, ["trials", str(directory)], terminal_width=200)
    assert table.exit_code == 0 and "trials of 'exp' (6, best val_acc first)" in table.output
    assert all(t["trial_id"] in table.output for t in trials)
