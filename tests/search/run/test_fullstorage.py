"""A full storage_path: told from any other error, and a trial's failure on it taken back."""

from __future__ import annotations

import errno

import pytest
from ray.tune.experiment import Trial

from search.run import fullstorage
from search.run.fullstorage import StorageGuard, no_space, storage_full


def chained(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except OSError as caught:
            raise RuntimeError("Tune's step failed") from caught
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("error, full", [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (chained(OSError(errno.ENOSPC, "No space left on device")), True),  # Tune wrapped it
    ("OSError: [Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on "
     "device", True),  # a trial's error.txt, as pyarrow words it
    (OSError(errno.EACCES, "Permission denied"), False),
    (chained(OSError(errno.EIO, "Input/output error")), False),
    ("ValueError: batch too big", False),
])
def test_a_full_storage_is_told_from_other_errors(error, full):
    assert no_space(error) is full


def test_the_line_names_storage_path_no_space_and_how_to_resume():
    assert storage_full("/mnt/runs") == (
        "storage_path is full: /mnt/runs has no space left on device; the search is saved as "
        "far as the storage took it: free space there, then run the same command to resume it")


@pytest.mark.parametrize("reason, taken_back", [
    ("OSError: [Errno 28] No space left on device", True),
    ("ValueError: the config cannot be trained", False),
])
def test_a_trial_failing_on_a_full_storage_spends_no_retry_and_stops_the_search(
        reason, taken_back, monkeypatch):
    trial = Trial("x", stub=True)
    trial.run_metadata.num_failures = 1  # what Ray counted before calling back
    monkeypatch.setattr(fullstorage, "error_reason", lambda t: reason)
    stops = []
    guard = StorageGuard()
    guard.stop = lambda: stops.append(True)
    guard.on_trial_recover(0, [trial], trial)
    assert trial.num_failures == (0 if taken_back else 1)
    assert stops == ([True] if taken_back else []) and (guard.full == reason) is taken_back
    assert guard.__getstate__() == {"full": None, "stop": None}  # the launch's stop is not saved
