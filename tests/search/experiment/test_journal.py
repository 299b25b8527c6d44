"""The driver's journal of every result, on a directory and on a real S3-compatible server, and
the record reading it in place of Ray's own copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from search.experiment.journal import JOURNAL_DIR, Journal, journal_path, read_journal
from search.experiment.results import read_results
from search.experiment.storage import as_path
from search.spec.job import TrialJob


def rows(n: int) -> list[dict]:
    return [{"epoch": e, "val_acc": e / 10, "config": {"lr": 0.1}} for e in range(1, n + 1)]


@pytest.fixture(params=["directory", "s3"])
def directory(request, tmp_path):
    if request.param == "directory":
        return tmp_path / "exp"
    bucket = request.getfixturevalue("s3")
    return as_path(f"{bucket.uri}/runs/exp")


def test_every_result_is_journaled_once_in_order(directory):
    with Journal(directory, flush_s=0.05) as journal:
        for row in rows(3):
            journal.append("a", row)
        journal.append("b", {"epoch": 1, "val_acc": float("nan"), "when": object()})
    lines = read_journal(directory, "a")
    assert [json.loads(line) for line in lines] == rows(3)
    assert json.loads(read_journal(directory, "b")[0])["epoch"] == 1  # NaN and odd types kept
    assert read_journal(directory, "never") is None and journal.failures == 0


def test_a_resumed_trial_goes_on_in_the_same_journal(directory):
    with Journal(directory) as first:
        for row in rows(2):
            first.append("a", row)
    with Journal(directory) as second:  # the next driver, after a crash or a Ctrl+C
        second.append("a", rows(3)[-1])
    assert [json.loads(line)["epoch"] for line in read_journal(directory, "a")] == [1, 2, 3]


def test_a_driver_that_lost_its_lease_writes_no_more(directory):
    holds = [True]
    with Journal(directory, keep=lambda: holds[0]) as journal:
        journal.append("a", rows(1)[0])
        journal.flush()
        holds[0] = False
        journal.append("a", rows(2)[-1])
    assert len(read_journal(directory, "a")) == 1


def test_a_failing_store_is_counted_and_retried(tmp_path):
    blocked = tmp_path / "exp"
    blocked.mkdir()
    (blocked / JOURNAL_DIR).write_text("a file where the journal's folder belongs")
    journal = Journal(blocked)
    journal.append("a", rows(1)[0])
    assert journal.failures == 1  # logged and counted, never raised into the search
    (blocked / JOURNAL_DIR).unlink()
    journal.append("a", rows(2)[-1])
    assert journal.failures == 1 and len(read_journal(blocked, "a")) == 1


def test_the_record_reads_the_journal_where_rays_copy_lags(ray_experiment, tmp_path):
    """A node lost before Ray's sync: Ray's result.json lacks epoch 2, the journal has it."""
    directory = Path(shutil.copytree(ray_experiment.directory, tmp_path / "exp"))
    best = ray_experiment.trial_of(ray_experiment.plan.BEST)
    result_json = directory / "ray" / best / "result.json"
    reports = [json.loads(line) for line in result_json.read_text().splitlines()]
    with Journal(directory) as journal:
        for report in reports:
            journal.append(best, report)
    result_json.write_text("".join(json.dumps(r) + "\n" for r in reports if r["epoch"] != 2))
    job = TrialJob(fixed={}, max_epochs=4, metric="val_acc", mode="max")
    trial = next(t for t in read_results(directory, job).trials if t.trial_id == best)
    assert [r["epoch"] for r in trial.results] == [1, 2, 3, 4]
    journal_path(directory, best).unlink()  # an experiment from before the journal
    trial = next(t for t in read_results(directory, job).trials if t.trial_id == best)
    assert [r["epoch"] for r in trial.results] == [1, 3, 4]
