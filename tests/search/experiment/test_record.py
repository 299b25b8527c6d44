"""The facade later commands use: one object for everything in the experiment's directory."""

import json
import os
import re
import time

import pytest
from search.experiment.decide import Action
from search.experiment.lease import LEASE_FILE, LeaseHeld, LeaseLost
from search.experiment.location import locate
from search.experiment.record import Experiment
from search.experiment.state import DamagedRecord, State, Status
from search.spec.job import TrialJob

SPEC = {"name": "exp", "budget": {"trials": 6}}


@pytest.fixture
def experiment(tmp_path) -> Experiment:
    return Experiment(locate("exp", "runs", "sqlite:///m.db", "data", tmp_path))


def started(experiment: Experiment, spec_hash="h1") -> State:
    state = State(name="exp", spec_hash=spec_hash, parent_run_id="p1",
                  tracking_uri=experiment.location.tracking_uri, status=Status.RUNNING,
                  created_at=time.time(), updated_at=time.time())
    experiment.save_state(state)
    experiment.save_spec(SPEC)
    return state


def test_names(experiment, tmp_path):
    assert experiment.name == "exp" and experiment.directory == tmp_path / "runs" / "exp"


def test_state_round_trip_and_mark(experiment):
    assert experiment.state() is None
    state = started(experiment)
    assert experiment.state() == state
    marked = experiment.mark(Status.INTERRUPTED, "SIGINT")
    assert experiment.state() == marked
    assert (marked.status, marked.reason) == (Status.INTERRUPTED, "SIGINT")
    assert marked.updated_at >= state.updated_at and marked.created_at == state.created_at
    assert experiment.mark(Status.RUNNING).reason is None  # a resume clears the old reason


def test_mark_without_state(experiment):
    with pytest.raises(DamagedRecord, match="resnet_search.json is missing"):
        experiment.mark(Status.FINISHED)


def test_spec_and_scheduler_state(experiment):
    assert experiment.saved_spec() is None and experiment.scheduler_state() == {}
    experiment.save_spec(SPEC)
    experiment.save_scheduler_state({"stopped": ["a1"], "rungs": {"1": [0.5]}})
    assert experiment.saved_spec() == SPEC
    assert experiment.scheduler_state() == {"stopped": ["a1"], "rungs": {"1": [0.5]}}
    (experiment.directory / "spec.json").write_text("[1, 2]")
    with pytest.raises(DamagedRecord, match="spec.json is damaged.*not an object"):
        experiment.saved_spec()


def test_decide(experiment):
    assert experiment.decide(SPEC, "h1").action is Action.NEW
    started(experiment)
    assert experiment.decide(SPEC, "h1").action is Action.NEW  # nothing saved by Ray yet
    ray = experiment.directory / "ray"
    ray.mkdir()
    (ray / "tuner.pkl").write_bytes(b"")
    assert not experiment.ray_saved()  # no snapshot yet
    (ray / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    assert experiment.ray_saved()
    resume = experiment.decide(SPEC, "h1")
    assert (resume.action, resume.parent_run_id) == (Action.RESUME, "p1")
    extend = experiment.decide({"name": "exp", "budget": {"trials": 8}}, "h2")
    assert extend.action is Action.EXTEND and extend.changes == ("budget.trials: 6 -> 8",)
    refuse = experiment.decide({"name": "exp", "budget": {"trials": 4}}, "h2")
    assert refuse.action is Action.REFUSE and refuse.changes[0].startswith(
        "budget.trials: 6 -> 4 (a budget can be raised")


def test_an_extension_becomes_the_records_spec_and_hash_with_the_change_noted(experiment):
    started(experiment)
    larger = {"name": "exp", "budget": {"trials": 8}}
    state = experiment.extend(larger, "h2", ("budget.trials: 6 -> 8",))
    assert experiment.saved_spec() == larger and experiment.state().spec_hash == "h2"
    assert [e["changes"] for e in experiment.state().extended] == [["budget.trials: 6 -> 8"]]
    assert experiment.state().extended == state.extended
    assert experiment.decide(larger, "h2").action is Action.NEW  # the same spec: unchanged
    experiment.extend(larger, "h2", ())  # redone after a launch killed mid-way: no new entry
    assert len(experiment.state().extended) == 1


def test_a_damaged_saved_spec_does_not_block_a_resume(experiment):
    started(experiment)
    (experiment.directory / "spec.json").write_text("{")
    assert experiment.decide(SPEC, "h1").action is Action.NEW
    with pytest.raises(DamagedRecord, match="spec.json"):
        experiment.decide(SPEC, "h2")  # explaining a refusal needs it


def test_lease_and_holder(experiment):
    assert experiment.holder() is None
    with experiment.lease(heartbeat_s=5) as lease:
        assert experiment.holder().token == lease.holder.token
        with pytest.raises(LeaseHeld):
            experiment.lease()
    assert experiment.holder() is None


def test_move_aside_keeps_the_lease(experiment):
    started(experiment)
    (experiment.directory / "trial1").mkdir()
    (experiment.directory / "trial1" / "result.json").write_text("{}")
    with experiment.lease() as lease:
        kept = experiment.move_aside()
        again = experiment.move_aside("restarted")  # twice within a second: two names
        assert re.fullmatch(r"exp\.aborted-\d{8}-\d{6}", kept.name)
        assert kept.parent == experiment.directory.parent
        assert sorted(os.listdir(kept)) == ["resnet_search.json", "spec.json", "trial1"]
        assert os.listdir(experiment.directory) == [LEASE_FILE]
        assert experiment.holder().token == lease.holder.token
        assert again.name.startswith("exp.restarted-") and os.listdir(again) == []
        assert experiment.state() is None and experiment.decide(SPEC, "h1").action is Action.NEW
    assert experiment.move_aside().name != kept.name  # same second, same label: a new name
    assert json.loads((kept / "spec.json").read_text()) == SPEC


def test_results(experiment):
    results = experiment.results(TrialJob(fixed={}, max_epochs=2, metric="val_acc", mode="max"))
    assert results.trials == [] and results.metric == "val_acc"


def test_an_experiment_laid_out_before_0_3_is_moved_below_the_record(experiment):
    """Ray's files beside the record (before 0.3) go to `ray/`; the record's own files and
    anything unknown stay."""
    started(experiment)
    top = experiment.directory
    ray_files = ["tuner.pkl", ".validate_storage_marker", "experiment_state-2026-01-01.json",
                 "search_gen_state-2026-01-01.json", "searcher-state-2026-01-01.pkl",
                 "callback-states-2026-01-01.pkl", "basic-variant-state-2026-01-01.json"]
    for name in ray_files:
        (top / name).write_text("{}")
    (top / "a1b2").mkdir()
    (top / "a1b2" / "params.json").write_text("{}")
    (top / "scheduler.json").write_text("{}")
    (top / "launch.log").write_text("log")
    (top / "notes").mkdir()  # not Ray's: stays
    assert experiment.ray_directory == top and experiment.ray_saved()
    with experiment.lease():
        assert experiment.move_ray_below()
        assert not experiment.move_ray_below()  # once
    assert experiment.ray_directory == top / "ray" and experiment.ray_saved()
    assert sorted(os.listdir(top / "ray")) == sorted([*ray_files, "a1b2"])
    assert sorted(os.listdir(top)) == ["launch.log", "notes", "ray", "resnet_search.json",
                                       "scheduler.json", "spec.json"]


def test_a_launch_that_lost_its_lease_writes_nothing(experiment):
    started(experiment)
    before = (experiment.directory / "resnet_search.json").read_bytes()
    lease = experiment.lease(heartbeat_s=0.05)
    lost = []
    lease.on_lost = lost.append
    (experiment.directory / LEASE_FILE).write_text(json.dumps(  # another launch took it over
        {"host": "node-2", "pid": 42, "pid_start": None, "since": time.time(),
         "heartbeat_at": time.time(), "token": "theirs"}))
    deadline = time.time() + 10
    while not lease.lost and time.time() < deadline:
        time.sleep(0.02)
    assert lease.lost and [h.host for h in lost] == ["node-2"]  # told once, with the new holder
    with pytest.raises(LeaseLost, match="held by pid 42 on node-2"):
        experiment.mark(Status.INTERRUPTED, "x")
    for write in (lambda: experiment.save_spec({}), lambda: experiment.save_scheduler_state({}),
                  experiment.forget, experiment.move_aside):
        with pytest.raises(LeaseLost):
            write()
    experiment.request_stop("someone")
    experiment.clear_stop()  # a request after the takeover is the new holder's
    assert experiment.stop_requested() == "someone"
    lease.release()
    assert (experiment.directory / "resnet_search.json").read_bytes() == before
    assert json.loads((experiment.directory / LEASE_FILE).read_text())["token"] == "theirs"
