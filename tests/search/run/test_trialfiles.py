"""Ray's result.json and progress.csv of a trial keep every report when the trial goes on after
a pause before Ray's next sync (search/run/trialfiles.py), on a real Ray Trial whose files Ray's
own loggers stage on the driver and sync to a real storage folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pyarrow.fs
import pytest
import ray
from ray.train import Checkpoint
from ray.train._internal.session import _TrainingResult
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from search.run.runtime import give_ray_time
from search.run.trialfiles import (CSVLogger, JsonLogger, complete, completed_csv, completed_json,
                                    completed_journal, missing)


@pytest.fixture(scope="module")
def staging_ray():
    # The driver's staging folder lies in the Ray session's folder: Ray must run.
    give_ray_time()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def a_trial(storage: Path, checkpoint: Path) -> Trial:
    """A trial of experiment `storage.name` with a checkpoint, as a trial that reported and was
    paused has. (Ray stages by experiment name and the second: each test names its own.)"""
    trial = Trial("trainable", config={}, trial_id="t1", stub=True,
                  storage=StorageContext(storage_path=str(storage.parent),
                                         experiment_dir_name=storage.name))
    trial.relative_logdir = trial.storage.trial_dir_name = "t1"
    trial.init_local_path()
    checkpoint.mkdir(exist_ok=True)
    trial.on_checkpoint(_TrainingResult(checkpoint=Checkpoint.from_directory(str(checkpoint)),
                                        metrics={}))
    return trial


def sync(trial: Trial, name: str) -> None:
    """Ray's sync of the driver's staging folder to the storage, for one file."""
    os.makedirs(trial.path, exist_ok=True)
    pyarrow.fs.copy_files(os.path.join(trial.local_path, name), os.path.join(trial.path, name))


def epochs(path: str, name: str) -> list[int]:
    with open(os.path.join(path, name)) as file:
        if name.endswith(".json"):
            return [json.loads(line)["epoch"] for line in file if line.strip()]
        return [int(row["epoch"]) for row in csv.DictReader(file)]


LOGGERS = [(JsonLogger, JsonLoggerCallback, "result.json"),
           (CSVLogger, CSVLoggerCallback, "progress.csv")]


def paused(logger, trial: Trial) -> None:
    logger.on_trial_start(iteration=2, trials=[trial], trial=trial)  # promoted: goes on


def retried(logger, trial: Trial) -> None:
    logger.on_trial_error(iteration=2, trials=[trial], trial=trial)
    logger.on_trial_start(iteration=2, trials=[trial], trial=trial)  # from its checkpoint


# Ray's CSV logger keeps its file open across a pause (it fetches only after a trial's end).
CASES = [(*LOGGERS[0], paused), (*LOGGERS[0], retried), (*LOGGERS[1], retried)]


@pytest.mark.parametrize("ours, rays, name, goes_on", CASES,
                         ids=["json-paused", "json-retried", "csv-retried"])
def test_a_trial_going_on_before_the_sync_keeps_every_report(staging_ray, tmp_path, ours, rays,
                                                             name, goes_on):
    seen = {}
    for logger_class in (rays, ours):
        trial = a_trial(tmp_path / f"{tmp_path.name}-{logger_class.__name__}",
                        tmp_path / "checkpoint")
        logger = logger_class()
        logger.on_trial_start(iteration=0, trials=[trial], trial=trial)
        logger.log_trial_result(1, trial, {"epoch": 1})
        sync(trial, name)  # Ray's sync, then a report it has not synced
        logger.log_trial_result(2, trial, {"epoch": 2})
        goes_on(logger, trial)
        logger.log_trial_result(3, trial, {"epoch": 3})
        logger.log_trial_end(trial)
        seen[logger_class] = epochs(trial.local_path, name)
    # Ray's own logger put the storage's copy back over the staged one: epoch 2 is gone.
    assert seen[rays] == [1, 3]
    assert seen[ours] == [1, 2, 3]


@pytest.mark.parametrize("ours, rays, name", LOGGERS, ids=["json", "csv"])
def test_a_resumed_driver_starts_from_the_storages_copy(staging_ray, tmp_path, ours, rays, name):
    storage, checkpoint = tmp_path / tmp_path.name, tmp_path / "checkpoint"
    first = a_trial(storage, checkpoint)
    logger = ours()
    for epoch in (1, 2):
        logger.log_trial_result(epoch, first, {"epoch": epoch})
    logger.log_trial_end(first)
    sync(first, name)

    shutil.rmtree(first.local_path)  # a new driver: nothing staged yet
    resumed = a_trial(storage, checkpoint)
    logger = ours()
    logger.log_trial_result(3, resumed, {"epoch": 3})
    logger.log_trial_end(resumed)
    assert epochs(resumed.local_path, name) == [1, 2, 3]


# --- what a driver killed mid-upload left behind, completed from the journal -------------------

def report(epoch: int, value: float) -> dict:
    return {"epoch": epoch, "val_acc": value, "config": {"lr": 0.1}, "trial_id": "t1"}


JOURNAL = [report(1, 0.2), report(2, 0.4), report(3, 0.5)]


@pytest.mark.parametrize("kept, added", [
    ([], [1, 2, 3]),
    ([report(1, 0.2)], [2, 3]),
    ([report(1, 0.2), report(2, 0.4), report(3, 0.5)], []),
    ([report(2, 0.4)], [1, 3]),
    ([{"no": "epoch"}], [1, 2, 3]),
])
def test_the_journals_results_of_epochs_rays_file_lacks_are_missing(kept, added):
    assert [r["epoch"] for r in missing(kept, JOURNAL)] == added


def test_an_epoch_trained_again_after_a_kill_is_added_once():
    journal = JOURNAL[:2] + [report(2, 0.41), report(3, 0.5)]
    assert [(r["epoch"], r["val_acc"]) for r in missing([report(1, 0.2)], journal)] == [
        (2, 0.4), (3, 0.5)]


def test_result_json_gets_its_missing_lines_in_epoch_order_and_a_whole_one_is_left():
    text = json.dumps(report(2, 0.4)) + "\n"
    done = completed_json(text, JOURNAL)
    assert [json.loads(line)["epoch"] for line in done.splitlines()] == [1, 2, 3]
    assert done.splitlines()[1] == text.strip()  # Ray's own line, as it was
    assert completed_json(done, JOURNAL) is None


def test_progress_csv_gets_rows_of_its_own_columns_flattened_as_ray_writes_them():
    nested = [dict(r, costs={"params": 10}) for r in JOURNAL]
    header = "epoch,val_acc,costs/params,trial_id\n"
    done = completed_csv(header + "1,0.2,10,t1\n", nested)
    rows = list(csv.DictReader(done.splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[2] == {"epoch": "3", "val_acc": "0.5", "costs/params": "10", "trial_id": "t1"}
    assert completed_csv(done, nested) is None
    fresh = list(csv.DictReader(completed_csv("", nested).splitlines()))  # no file at all
    assert len(fresh) == 3 and "config/lr" not in fresh[0] and fresh[0]["costs/params"] == "10"


def test_the_journal_gets_what_only_rays_copy_has_at_its_end():
    """A driver killed after Ray uploaded a finished trial and before the journal's next put."""
    lines = [json.dumps(r) for r in JOURNAL[:2]]
    ray = "".join(json.dumps(r) + "\n" for r in JOURNAL)
    done = completed_journal(lines, ray)
    assert [json.loads(line)["epoch"] for line in done.splitlines()] == [1, 2, 3]
    assert done.splitlines()[:2] == lines
    assert completed_journal(done.splitlines(), ray) is None
    assert completed_journal(lines, "") is None


def test_complete_rewrites_the_trials_files_that_lack_results_and_counts_what_fails(tmp_path):
    experiment = tmp_path / "exp"
    ray_dir = experiment / "ray"
    (experiment / "results").mkdir(parents=True)
    for trial_id in ("t1", "t2", "t3"):
        (experiment / "results" / f"{trial_id}.jsonl").write_text(
            "".join(json.dumps(dict(r, trial_id=trial_id)) + "\n" for r in JOURNAL))
    (ray_dir / "t1").mkdir(parents=True)
    (ray_dir / "t1" / "result.json").write_text(json.dumps(JOURNAL[0]) + "\n")
    (ray_dir / "t2").mkdir()
    whole = "".join(json.dumps(r) + "\n" for r in JOURNAL)
    (ray_dir / "t2" / "result.json").write_text(whole)
    (ray_dir / "t3").write_text("a file where the trial's folder should be")
    # t5: its journal is one epoch short of Ray's copy
    (experiment / "results" / "t5.jsonl").write_text(json.dumps(JOURNAL[0]) + "\n")
    (ray_dir / "t5").mkdir()
    (ray_dir / "t5" / "result.json").write_text(whole)
    (ray_dir / "t5" / "progress.csv").write_text("epoch,val_acc\n1,0.2\n2,0.4\n3,0.5\n")
    rewritten, failed = complete(ray_dir, experiment, ["t1", "t2", "t3", "t4", "t5"])
    # t1: both files; t2: progress.csv only; t3: its journal read, both files fail; t4: no
    # journal, nothing to do; t5: the journal only
    assert (rewritten, failed) == (4, 3)
    assert [json.loads(line)["epoch"] for line in
            (experiment / "results" / "t5.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert [json.loads(line)["epoch"] for line in
            (ray_dir / "t1" / "result.json").read_text().splitlines()] == [1, 2, 3]
    assert (ray_dir / "t2" / "result.json").read_text() == whole
    assert len(list(csv.DictReader((ray_dir / "t2" / "progress.csv").open()))) == 3
    assert not list(ray_dir.glob("*/.*.completing"))
    # a driver that lost its lease writes nothing
    (ray_dir / "t1" / "result.json").write_text(json.dumps(JOURNAL[0]) + "\n")
    assert complete(ray_dir, experiment, ["t1"], keep=lambda: False) == (0, 0)
    assert (ray_dir / "t1" / "result.json").read_text() == json.dumps(JOURNAL[0]) + "\n"
