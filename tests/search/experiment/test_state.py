"""The state file: plain JSON, atomic, and a damaged one says what is wrong and what to do."""

import json
import os

import pytest
from search.experiment.state import (
    FORMAT, STATE_FILE, DamagedRecord, OldRecord, State, Status, read_json, read_state,
    write_json_atomic, write_state)


def a_state(**changes) -> State:
    fields = dict(name="exp", spec_hash="abc123", parent_run_id="run1",
                  tracking_uri="sqlite:////x/mlflow.db", status=Status.RUNNING,
                  created_at=100.0, updated_at=200.5)
    return State(**{**fields, **changes})


def test_round_trip(tmp_path):
    state = a_state(status=Status.ABORTED, reason="3 trials failed with the same error")
    write_state(tmp_path, state)
    assert read_state(tmp_path) == state
    data = json.loads((tmp_path / STATE_FILE).read_text())
    assert data["format"] == FORMAT and data["status"] == "aborted"  # plain JSON, versioned


def test_absent_is_none(tmp_path):
    assert read_state(tmp_path) is None
    assert read_state(tmp_path / "no" / "such" / "dir") is None
    assert read_json(tmp_path / "spec.json") is None


def test_write_creates_the_directory_and_leaves_no_temp_files(tmp_path):
    directory = tmp_path / "a" / "b"
    write_state(directory, a_state())
    write_state(directory, a_state(status=Status.FINISHED))
    assert os.listdir(directory) == [STATE_FILE]
    assert read_state(directory).status is Status.FINISHED


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "spec.json"
    write_json_atomic(path, {"old": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"new": object()})  # not JSON: fails half-way through
    assert read_json(path) == {"old": 1}
    assert os.listdir(tmp_path) == ["spec.json"]


GOOD = {"format": FORMAT, "name": "exp", "spec_hash": "abc", "parent_run_id": "r",
        "tracking_uri": "sqlite:////m.db", "status": "running", "created_at": 1.0,
        "updated_at": 2}

DAMAGED = [
    # file text, what the message says is wrong
    ('{"format": 2, "name": "ex', "not valid JSON"),
    ("", "empty"),
    ("[1, 2]", "JSON list, not an object"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "spec_hash"}), "missing spec_hash"),
    (json.dumps({**GOOD, "created_at": "yesterday"}), "created_at is 'yesterday'"),
    (json.dumps({**GOOD, "created_at": True}), "created_at is True"),
    (json.dumps({**GOOD, "reason": 3}), "reason is 3"),
    (json.dumps({**GOOD, "status": "paused"}), "status is 'paused'"),
    (json.dumps({**GOOD, "format": 3}), "format is 3"),
]


@pytest.mark.parametrize("text, problem", DAMAGED)
def test_damaged(tmp_path, text, problem):
    (tmp_path / STATE_FILE).write_text(text)
    with pytest.raises(DamagedRecord) as error:
        read_state(tmp_path)
    message = str(error.value)
    assert not isinstance(error.value, OldRecord)
    assert str(tmp_path / STATE_FILE) in message and problem in message
    assert "untouched" in message and "backup" in message and "--name" in message


def test_an_int_timestamp_reads_as_float(tmp_path):
    (tmp_path / STATE_FILE).write_text(json.dumps(GOOD))
    state = read_state(tmp_path)
    assert state.updated_at == 2.0 and isinstance(state.updated_at, float)
    assert state.reason is None and state.status is Status.RUNNING


def test_old_layout(tmp_path):
    old = {"parent_run_id": "78aa", "spec_hash": "b613", "tracking_uri": "sqlite:////m.db",
           "aborted": "3 trials failed"}
    (tmp_path / STATE_FILE).write_text(json.dumps(old))
    with pytest.raises(OldRecord) as error:
        read_state(tmp_path)
    assert isinstance(error.value, DamagedRecord)
    message = str(error.value)
    assert str(tmp_path / STATE_FILE) in message and "cannot be resumed" in message
    assert "--name" in message and "move" in message


def test_damaged_other_record_file(tmp_path):
    (tmp_path / "scheduler.json").write_text('{"stopped": ["a"')
    with pytest.raises(DamagedRecord, match="scheduler.json is damaged"):
        read_json(tmp_path / "scheduler.json")
