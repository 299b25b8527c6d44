"""Results read from Ray's own files: a real Ray experiment (conftest.py), read without Ray."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from resnet_core.config import resolved
from search.experiment.decide import ray_directory
from search.experiment.results import (
    kept, last_exception, per_epoch, read_results, saved_checkpoint, trial_config)
from search.experiment.state import DamagedRecord
from search.spec.job import TrialJob
from search.spec.outcome import Outcome

EPOCHS = 4


def job(metric="val_acc", mode="max", **fixed) -> TrialJob:
    return TrialJob(fixed=fixed, max_epochs=EPOCHS, metric=metric, mode=mode)


def copy(ray_experiment, tmp_path) -> Path:
    return Path(shutil.copytree(ray_experiment.directory, tmp_path / "exp"))


def result_lines(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]


def test_every_trial_as_ray_wrote_it(ray_experiment):
    plan, directory = ray_experiment.plan, ray_experiment.directory
    results = read_results(directory, job())
    assert sorted(t.params["lr"] for t in results.trials) == sorted(plan.LRS)
    assert results.orphans == [] and (results.metric, results.mode) == ("val_acc", "max")
    for trial in results.trials:
        trial_dir = ray_experiment.ray / trial.trial_id
        assert trial.params == json.loads((trial_dir / "params.json").read_text())
        assert trial.config == resolved(job().train_config(trial.params))
        assert trial.config["lr"] == trial.params["lr"] and trial.config["epochs"] == EPOCHS
        assert trial.config_error is None
        last_of_epoch = {r["epoch"]: r for r in result_lines(trial_dir)}
        assert trial.results == [last_of_epoch[e] for e in sorted(last_of_epoch)]
        assert trial.epochs == max(last_of_epoch)
        lr = trial.params["lr"]
        for epoch, value in trial.curve():
            expected = plan.val_acc(lr, epoch)
            if lr == plan.RETRYING and epoch == 3:
                expected += plan.RETRY_BONUS  # the retried attempt's report wins
            assert value == pytest.approx(expected)
    assert results.epochs_used == sum(len(t.results) for t in results.trials)


def test_each_ending(ray_experiment):
    plan = ray_experiment.plan
    by_lr = {t.params["lr"]: t for t in read_results(ray_experiment.directory, job()).trials}
    failed = by_lr[plan.FAILING]
    assert (failed.status, failed.outcome) == ("ERROR", Outcome.FAILED)
    assert failed.error == "ValueError: boom at epoch 2"
    assert failed.epochs == 1 and failed.best == pytest.approx(plan.val_acc(plan.FAILING, 1))

    diverged = by_lr[plan.DIVERGING]
    assert diverged.outcome is Outcome.DIVERGED and diverged.epochs == 2
    assert math.isnan(diverged.results[-1]["val_acc"])
    assert diverged.best == pytest.approx(plan.val_acc(plan.DIVERGING, 1))  # NaN never wins
    assert diverged.curve() == [(1, pytest.approx(plan.val_acc(plan.DIVERGING, 1)))]
    assert diverged.curve("train_acc")[-1][0] == 2

    retried = by_lr[plan.RETRYING]  # failed once, then finished: not an error
    assert (retried.status, retried.outcome, retried.error) == ("TERMINATED", Outcome.COMPLETED,
                                                                None)
    assert [r["epoch"] for r in retried.results] == [1, 2, 3, 4]

    for lr in plan.STOPPED:  # without scheduler.json nobody says ASHA stopped them
        assert by_lr[lr].outcome is Outcome.KILLED and by_lr[lr].epochs == 1
    assert by_lr[plan.BEST].outcome is Outcome.COMPLETED


def test_checkpoints(ray_experiment):
    for trial in read_results(ray_experiment.directory, job()).trials:
        assert trial.checkpoint is not None and trial.checkpoint.is_dir()
        assert trial.checkpoint.parent == ray_experiment.ray / trial.trial_id
        assert trial.checkpoint.name == max(p.name for p in trial.checkpoint.parent.glob(
            "checkpoint_*"))
    best = read_results(ray_experiment.directory, job()).best
    assert best.checkpoint.name == "checkpoint_000003"  # epoch 4, the only one kept


@pytest.mark.parametrize("metric, mode, order", [
    ("val_acc", "max", [0.1, 0.3, 3.0, 1.0, 0.03, 0.01]),
    ("val_acc", "min", [0.01, 0.03, 1.0, 3.0, 0.3, 0.1]),
    ("val_loss", "min", [0.1, 0.3, 3.0, 1.0, 0.03, 0.01]),
    ("val_loss", "max", [0.01, 0.03, 1.0, 3.0, 0.3, 0.1]),
])
def test_best_first(ray_experiment, metric, mode, order):
    results = read_results(ray_experiment.directory, job(metric, mode))
    assert [t.params["lr"] for t in results.trials] == order
    assert results.best is results.trials[0]
    bests = [t.best for t in results.trials]
    assert bests == sorted(bests, reverse=(mode == "max"))


def test_stopped_by_the_scheduler(ray_experiment, tmp_path):
    directory = copy(ray_experiment, tmp_path)
    stopped = [ray_experiment.trial_of(lr) for lr in ray_experiment.plan.STOPPED]
    (directory / "scheduler.json").write_text(json.dumps({"stopped": stopped, "rungs": {}}))
    for trial in read_results(directory, job()).trials:
        assert (trial.outcome is Outcome.STOPPED) == (trial.trial_id in stopped)
    (directory / "scheduler.json").write_text('{"stopped": [')
    with pytest.raises(DamagedRecord, match="scheduler.json"):
        read_results(directory, job())


def test_orphan_trial_directory(ray_experiment, tmp_path):
    """A trial started by a driver that died before Ray saved it: not a result."""
    directory = copy(ray_experiment, tmp_path)
    ray = directory / "ray"
    shutil.copytree(ray / ray_experiment.trial_of(0.1), ray / "deadbeef")
    results = read_results(directory, job())
    assert results.orphans == ["deadbeef"]
    assert "deadbeef" not in [t.trial_id for t in results.trials] and len(results.trials) == 6


def test_a_trial_not_started_yet(ray_experiment, tmp_path):
    """Ray lists a PENDING trial before it creates its directory: its params come from the
    experiment state."""
    directory = copy(ray_experiment, tmp_path)
    pending = ray_experiment.trial_of(0.01)
    shutil.rmtree(directory / "ray" / pending)
    (state_file,) = (directory / "ray").glob("experiment_state-*.json")
    data = json.loads(state_file.read_text())
    for entry in data["trial_data"]:
        trial = json.loads(entry[0])
        if trial["trial_id"] == pending:
            entry[0] = json.dumps({**trial, "status": "PENDING"})
    state_file.write_text(json.dumps(data))
    trial = next(t for t in read_results(directory, job()).trials if t.trial_id == pending)
    assert (trial.status, trial.params, trial.results) == ("PENDING", {"lr": 0.01}, [])
    assert trial.checkpoint is None and trial.best is None and trial.epochs == 0
    assert trial.config["lr"] == 0.01
    assert read_results(directory, job()).trials[-1].trial_id == pending  # no value: last


def test_half_written_last_line(ray_experiment, tmp_path):
    directory = copy(ray_experiment, tmp_path)
    best = ray_experiment.trial_of(0.1)
    before = read_results(directory, job()).trials
    with open(directory / "ray" / best / "result.json", "a") as handle:
        handle.write('{"epoch": 5, "val_acc": 0.99')  # the driver died mid-write
    assert read_results(directory, job()).trials == before


def test_params_invalid_for_the_job(ray_experiment, tmp_path):
    directory = copy(ray_experiment, tmp_path)
    trial_id = ray_experiment.trial_of(0.1)
    (directory / "ray" / trial_id / "params.json").write_text(json.dumps({"lr": -1.0}))
    trial = next(t for t in read_results(directory, job()).trials if t.trial_id == trial_id)
    assert trial.config == {} and "lr is -1.0" in trial.config_error
    assert trial.params == {"lr": -1.0} and len(trial.results) == 4  # still read


def test_newest_experiment_state_is_the_truth(ray_experiment, tmp_path):
    directory = copy(ray_experiment, tmp_path)
    ray = directory / "ray"
    (state_file,) = ray.glob("experiment_state-*.json")
    data = json.loads(state_file.read_text())
    errored = ray_experiment.trial_of(ray_experiment.plan.FAILING)
    for entry in data["trial_data"]:  # a later session retried the failed trial
        trial = json.loads(entry[0])
        if trial["trial_id"] == errored:
            entry[0] = json.dumps({**trial, "status": "RUNNING"})
    (ray / "experiment_state-2099-01-01_00-00-00.json").write_text(json.dumps(data))
    (ray / "experiment_state-2099-12-31_00-00-00.json").write_text('{"trial_da')  # cut
    by_id = {t.trial_id: t for t in read_results(directory, job()).trials}
    assert by_id[errored].status == "RUNNING" and by_id[errored].outcome is Outcome.KILLED


def test_without_experiment_state(ray_experiment, tmp_path):
    directory = copy(ray_experiment, tmp_path)
    for path in (directory / "ray").glob("experiment_state-*.json"):
        path.unlink()
    results = read_results(directory, job())
    assert len(results.trials) == 6 and results.orphans == []
    assert {t.status for t in results.trials} == {"UNKNOWN"}
    failed = next(t for t in results.trials if t.params["lr"] == ray_experiment.plan.FAILING)
    assert failed.error == "ValueError: boom at epoch 2"  # status unknown: show what it died of


def test_an_experiment_of_the_layout_before_0_3(ray_experiment, tmp_path):
    """Ray's files beside the record (resnet-search before 0.3) are read where they are, and a
    launch's `move_ray_below` puts them in `ray/` (experiment/test_record.py)."""
    directory = copy(ray_experiment, tmp_path)
    for entry in list((directory / "ray").iterdir()):
        entry.rename(directory / entry.name)
    (directory / "ray").rmdir()
    assert ray_directory(directory) == directory
    def seen(trials):
        return [(t.trial_id, t.status, t.results, t.outcome, t.best) for t in trials]

    legacy = read_results(directory, job()).trials
    assert seen(legacy) == seen(read_results(ray_experiment.directory, job()).trials)
    assert all(t.checkpoint is None or t.checkpoint.parent.parent == directory for t in legacy)


READ_IN_A_FRESH_PROCESS = """
import json, sys
from search.experiment.location import locate
from search.experiment.record import Experiment
from search.spec.job import TrialJob
experiment = Experiment(locate("exp", sys.argv[1], "sqlite:///m.db", "data", "/"))
results = experiment.results(TrialJob(fixed={}, max_epochs=4, metric="val_acc", mode="max"))
print(json.dumps({"trials": len(results.trials), "best": results.best.trial_id,
                  "config": len(results.best.config), "error": [t.error for t in results.trials],
                  "loaded": [m for m in ("ray", "torch", "mlflow", "optuna", "pydantic")
                             if m in sys.modules]}))
"""


def test_reading_imports_no_engine(ray_experiment):
    done = subprocess.run([sys.executable, "-c", READ_IN_A_FRESH_PROCESS,
                           str(ray_experiment.directory.parent)],
                          capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(done.stdout)
    assert seen["trials"] == 6 and seen["config"] > 10
    assert "ValueError: boom at epoch 2" in seen["error"]
    assert seen["loaded"] == []


def test_empty_or_absent_directory(tmp_path):
    for directory in (tmp_path, tmp_path / "absent"):
        results = read_results(directory, job())
        assert results.trials == [] and results.orphans == [] and results.best is None
        assert results.epochs_used == 0


# ---- the pure parts ----

PER_EPOCH = [
    # result.json lines -> epochs (value) kept
    (['{"epoch": 1, "v": 1}', '{"epoch": 2, "v": 2}'], [(1, 1), (2, 2)]),
    (['{"epoch": 1, "v": 1}', '{"epoch": 2, "v": 2}', '{"epoch": 2, "v": 3}'], [(1, 1), (2, 3)]),
    (['{"epoch": 2, "v": 2}', '{"epoch": 1, "v": 1}'], [(1, 1), (2, 2)]),  # ordered by epoch
    (['{"epoch": 1, "v": 1}', '{"epoch": 2, "v"'], [(1, 1)]),  # cut mid-write
    (['{"epoch": 1, "v": 1}', "", "  "], [(1, 1)]),
    (['{"v": 1}', "[1]", '{"epoch": true, "v": 1}', '{"epoch": 1, "v": 9}'], [(1, 9)]),
    (['{"epoch": 1, "v": NaN}'], [(1, "nan")]),  # Ray writes NaN: kept, never ranked
    ([], []),
]


@pytest.mark.parametrize("lines, kept", PER_EPOCH)
def test_per_epoch(lines, kept):
    got = [(r["epoch"], "nan" if isinstance(r["v"], float) and math.isnan(r["v"]) else r["v"])
           for r in per_epoch(lines)]
    assert got == kept


TRACEBACK = """Failure # 1 (occurred at 2026-01-01_00-00-00)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=1, ip=1.2.3.4, repr=trainable)
  File "/x/trainable.py", line 3, in run
    raise RuntimeError("first")
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^
RuntimeError: first
Failure # 2 (occurred at 2026-01-01_00-00-05)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=2, ip=1.2.3.4, repr=trainable)
  File "/x/trainable.py", line 3, in run
    raise torch.OutOfMemoryError(msg)
torch.OutOfMemoryError: CUDA out of memory: tried 2 GiB
  second line of the message
"""

LAST_EXCEPTION = [
    (TRACEBACK, "torch.OutOfMemoryError: CUDA out of memory: tried 2 GiB"),
    (TRACEBACK.split("Failure # 2")[0], "RuntimeError: first"),
    ("Failure # 1 (occurred at x)\nray.exceptions.NodeDiedError: node 10.0.0.2 died\n",
     "ray.exceptions.NodeDiedError: node 10.0.0.2 died"),  # no traceback: the last line
    ("", None),
]


@pytest.mark.parametrize("text, expected", LAST_EXCEPTION)
def test_last_exception(text, expected):
    assert last_exception(text) == expected


@pytest.mark.parametrize("params, problem", [
    ({"lr": -1.0}, "lr is -1.0 but must be > 0"),
    ({"bogus": 1}, "unknown training field 'bogus'"),
    ({"epochs": 3}, None),  # set by the budget: overridden, as job.train_config does
    ({"lr": "fast"}, "lr is 'fast' but must be a number"),
])
def test_trial_config(params, problem):
    if problem is None:
        assert trial_config(job(), params)["epochs"] == EPOCHS
        return
    with pytest.raises(ValueError, match=problem):
        trial_config(job(), params)


def test_trial_config_matches_the_job():
    params = {"lr": 0.05, "milestones": [0.3, 0.6], "width": 2, "block": "bottleneck"}
    expected = resolved(job(depth=50, momentum=0.8).train_config(params))
    assert trial_config(job(depth=50, momentum=0.8), params) == expected


EPOCHS_1_TO_3 = [{"epoch": e, "checkpoint_dir_name": f"checkpoint_{e - 1:06d}"} for e in (1, 2, 3)]


@pytest.mark.parametrize("status, checkpoint, epochs", [
    ("TERMINATED", "checkpoint_000001", [1, 2, 3]),  # ended: everything it reported is kept
    ("ERROR", None, [1, 2, 3]),
    # Epoch 3 was taken, its checkpoint not yet: a resume trains epoch 3 again from epoch 2's.
    ("RUNNING", "checkpoint_000001", [1, 2]),
    ("PAUSED", "checkpoint_000002", [1, 2, 3]),
    ("PENDING", None, []),  # no checkpoint in the snapshot: it starts over
    ("RUNNING", "checkpoint_000007", []),  # a checkpoint no result names: nothing certain
    ("UNKNOWN", None, [1, 2, 3]),  # no snapshot at all: what is on disk
])
def test_an_unfinished_trial_keeps_what_its_checkpoint_holds(status, checkpoint, epochs):
    assert [r["epoch"] for r in kept(EPOCHS_1_TO_3, status, checkpoint)] == epochs


def manager(*names: str) -> str:
    """Run metadata whose checkpoint manager Ray pickled holding these checkpoint paths."""
    import pickle

    blob = pickle.dumps({"_checkpoints": [f"/runs/x/t/{n}" for n in names]})
    return json.dumps({"checkpoint_manager": {"_type": "CLOUDPICKLE_FALLBACK",
                                              "value": blob.hex()}})


@pytest.mark.parametrize("metadata, checkpoint", [
    (manager("checkpoint_000002"), "checkpoint_000002"),
    (manager("checkpoint_000001", "checkpoint_000004"), "checkpoint_000004"),
    (manager(), None),
    (json.dumps({}), None),
    ("not json", None),
])
def test_the_snapshots_checkpoint_is_read_without_unpickling(metadata, checkpoint):
    assert saved_checkpoint(metadata) == checkpoint
