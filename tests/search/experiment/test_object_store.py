"""The experiment record on an object store (storage_path: s3://...), against a real
S3-compatible server (moto's, on 127.0.0.1): the same record, stop requests, listing and one
driver per experiment as on a directory."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from search.experiment.lease import LEASE_FILE, LeaseHeld
from search.experiment.object_lease import ObjectLease
from search.experiment.location import locate, storage_of, storage_problem
from search.experiment.record import Experiment, experiments_in
from search.experiment.state import STATE_FILE, State, Status, read_json, write_json_atomic
from search.experiment.storage import as_path, is_local
from search.run.driverlog import LOG_FILE, Uploads, teed_stderr


def state(name: str = "exp") -> State:
    return State(name=name, spec_hash="h", parent_run_id="p", tracking_uri="sqlite:///x.db",
                 status=Status.RUNNING, created_at=1.0, updated_at=1.0)


def read_holder(directory):
    return ObjectLease.read(directory / LEASE_FILE)


def experiment_on(bucket, name: str = "exp") -> Experiment:
    return Experiment(locate(name, f"{bucket.uri}/runs", "sqlite:///x.db", "data", Path("/")))


def test_the_record_lives_in_the_bucket(s3):
    record = experiment_on(s3)
    assert not is_local(record.directory) and str(record.directory) == f"{s3.uri}/runs/exp"
    record.save_state(state())
    record.save_spec({"name": "exp"})
    assert json.loads(s3.fs.cat_file(f"{s3.name}/runs/exp/{STATE_FILE}"))["status"] == "running"
    assert record.mark(Status.INTERRUPTED, "SIGINT").status is Status.INTERRUPTED
    opened = Experiment.open(f"{s3.uri}/runs/exp")  # `status s3://...`: from the record alone
    assert opened.state().reason == "SIGINT" and opened.saved_spec() == {"name": "exp"}
    assert [str(d) for d in experiments_in(f"{s3.uri}/runs")] == [f"{s3.uri}/runs/exp"]


def test_a_stop_request_is_seen_and_cleared(s3):
    record = experiment_on(s3)
    assert record.stop_requested() is None
    record.request_stop(by="alice@laptop")
    assert experiment_on(s3).stop_requested() == "alice@laptop"  # another process's view
    record.clear_stop()
    assert record.stop_requested() is None
    record.clear_stop()  # clearing nothing is fine


def test_a_stop_request_reaches_a_driver_that_listed_the_prefix_before(s3):
    """The driver's record has read the experiment's prefix long before `stop` (another
    process) writes there: it must not answer from a cached listing."""
    record = experiment_on(s3)
    record.save_state(state())
    assert [p.name for p in record.directory.iterdir()] == [STATE_FILE]
    assert record.stop_requested() is None
    s3.fs.pipe_file(f"{record.directory.path}/stop-request.json", b'{"by": "bob@elsewhere"}')
    assert record.stop_requested() == "bob@elsewhere"
    assert len(list(record.directory.iterdir())) == 2


def test_moving_aside_and_forgetting_keep_the_lease(s3):
    record = experiment_on(s3)
    record.save_state(state())
    (record.directory / "trial1" / "result.json").write_text("{}\n")
    with record.lease():
        kept = record.move_aside("aborted")
        assert kept.name.startswith("exp.aborted-")
        assert sorted(p.name for p in kept.iterdir()) == [STATE_FILE, "trial1"]
        assert (kept / "trial1" / "result.json").read_text() == "{}\n"
        assert [p.name for p in record.directory.iterdir()] == [LEASE_FILE]
        (record.directory / "spec.json").write_text("{}")
        record.forget()
        assert [p.name for p in record.directory.iterdir()] == [LEASE_FILE]


def test_json_is_replaced_whole(s3):
    path = as_path(f"{s3.uri}/x/state.json")
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert read_json(path) == {"a": 2}
    assert read_json(as_path(f"{s3.uri}/x/missing.json")) is None


# --- one driver per experiment: S3's conditional writes ------------------------------------------

def test_a_second_driver_is_refused_while_the_first_holds_it(s3):
    directory = experiment_on(s3).directory
    with ObjectLease.acquire(directory) as held:
        assert read_holder(directory).token == held.holder.token
        with pytest.raises(LeaseHeld) as refused:
            ObjectLease.acquire(directory)
        assert f"pid {held.holder.pid}" in str(refused.value)
        assert experiment_on(s3).driver() is not None
    assert read_holder(directory) is None  # released: the object is gone
    with ObjectLease.acquire(directory):  # and it can be taken again
        pass


def plant(s3, directory, host: str, age_s: float) -> None:
    now = time.time() - age_s
    s3.fs.pipe_file(f"{directory.path}/{LEASE_FILE}", json.dumps(
        {"host": host, "pid": 4242, "pid_start": None, "since": now, "heartbeat_at": now,
         "token": "theirs"}).encode())


def test_a_lease_whose_heartbeat_stopped_is_taken_over(s3):
    directory = experiment_on(s3).directory
    plant(s3, directory, "another-node", age_s=120)  # older than the TTL
    with ObjectLease.acquire(directory, ttl_s=60) as lease:
        assert lease.taken_over is not None and lease.taken_over.host == "another-node"
        assert read_holder(directory).token == lease.holder.token
    plant(s3, directory, "another-node", age_s=5)  # a live one on another node: refused
    with pytest.raises(LeaseHeld, match="another-node"):
        ObjectLease.acquire(directory, ttl_s=60)


def test_racing_takeovers_of_one_stale_lease_make_one_driver(s3):
    directory = experiment_on(s3).directory
    plant(s3, directory, "another-node", age_s=120)
    won, refused = [], []
    start = threading.Barrier(6)

    def race() -> None:
        start.wait()
        try:
            won.append(ObjectLease.acquire(directory, ttl_s=60, heartbeat_s=3600))
        except LeaseHeld:
            refused.append(1)

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(won) == 1 and len(refused) == 5
        assert read_holder(directory).token == won[0].holder.token
    finally:
        for lease in won:
            lease.release()


def test_the_heartbeat_renews_and_learns_of_a_takeover(s3):
    directory = experiment_on(s3).directory
    lease = ObjectLease.acquire(directory, heartbeat_s=0.2)
    try:
        first = read_holder(directory).heartbeat_at
        deadline = time.time() + 10
        while read_holder(directory).heartbeat_at == first and time.time() < deadline:
            time.sleep(0.05)
        assert read_holder(directory).heartbeat_at > first and not lease.lost
        plant(s3, directory, "another-node", age_s=0)  # judged dead and taken over elsewhere
        deadline = time.time() + 10
        while not lease.lost and time.time() < deadline:
            time.sleep(0.05)
        assert lease.lost
    finally:
        lease.release()
    assert read_holder(directory).token == "theirs"  # release leaves the new holder's lease


# --- the storage check and the driver's log -------------------------------------------------------

def test_storage_checks_write_to_the_bucket(s3):
    good = storage_of(f"{s3.uri}/runs", Path("/"))
    assert storage_problem(f"{s3.uri}/runs", good) is None
    assert s3.fs.find(s3.name) == []  # the probe is gone
    missing = "s3://no-such-bucket-here/runs"
    reason = storage_problem(missing, storage_of(missing, Path("/")))
    assert reason and repr(missing) in reason and "AWS_ENDPOINT_URL" in reason


def test_the_driver_log_is_uploaded_and_continued(s3, monkeypatch):
    directory = experiment_on(s3).directory
    monkeypatch.setattr("search.run.driverlog.UPLOAD_S", 0.1)
    with teed_stderr(directory) as log:
        sys.stderr.write("first launch\n")
        deadline = time.time() + 10
        while not log.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert "first launch" in log.read_text()  # uploaded while the driver runs
    with teed_stderr(directory):
        sys.stderr.write("second launch\n")
    text = (directory / LOG_FILE).read_text()
    assert text.count("=== launch on ") == 2 and text.index("first") < text.index("second")


def test_a_failed_upload_is_counted_not_raised(s3, tmp_path):
    local = tmp_path / LOG_FILE
    local.write_text("x\n")
    uploads = Uploads(local, as_path("s3://no-such-bucket-here/exp/launch.log"))
    uploads.once()
    uploads.once()
    assert uploads.failures == 2
    uploads.remote = as_path(f"{s3.uri}/exp/launch.log")
    uploads.once()
    assert uploads.failures == 2 and uploads.remote.read_text() == "x\n"
