"""The ledger: the one place a launch decides how each trial ended (table tests, no Ray)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest
import ray.cloudpickle
from trials import FakeTrial, trial_record

from search.engine.ledger import Ledger, TrialEnd
from search.experiment.results import Results, TrialRecord
from search.spec.outcome import Outcome


def trial(trial_id: str, status: str = "RUNNING", last: dict | None = None) -> FakeTrial:
    return FakeTrial(trial_id, status=status, last_result=last)


def epoch(n: int, **extra) -> dict:
    return {"epoch": n, "val_acc": 0.5 + n / 100, **extra}


ENDS = [
    # last result, errored, stopped by the scheduler, expected end
    (epoch(4), False, False, TrialEnd(Outcome.COMPLETED, 4)),
    (epoch(2), False, True, TrialEnd(Outcome.STOPPED, 2, stopped_by="asha")),
    (epoch(2), False, False, TrialEnd(Outcome.KILLED, 2)),
    (epoch(2, outcome="diverged", reason="DivergenceError: nan"), False, False,
     TrialEnd(Outcome.DIVERGED, 2, "DivergenceError: nan")),
    (epoch(1, outcome="oom", reason="CUDA out of memory"), False, True,
     TrialEnd(Outcome.OOM, 1, "CUDA out of memory")),
    (epoch(3), True, False, TrialEnd(Outcome.FAILED, 3, "RuntimeError: boom")),
    ({}, False, False, TrialEnd(Outcome.KILLED, 0)),  # never reported (removed while pending)
]


@pytest.mark.parametrize("last, errored, stopped, expected", ENDS)
def test_how_a_trial_ended(last, errored, stopped, expected):
    ledger = Ledger(4, stop_tag="asha")
    if stopped:
        ledger.stop("t")
    end = ledger.end("t", errored=errored, last=last, reason=lambda: "RuntimeError: boom")
    assert end == expected and end.last == last
    assert ledger.ended("t") is end


def test_a_trial_ends_once_and_every_part_reads_that_decision():
    ledger = Ledger(4, stop_tag="asha")
    first = ledger.end("t", errored=True, last=epoch(2))  # the searcher: no trial to read
    assert (first.outcome, first.reason) == (Outcome.FAILED, "")
    # The callbacks' event reads the reason; the decision stands.
    later = ledger.end("t", errored=True, last=epoch(4), reason=lambda: "ValueError: x")
    assert (later.outcome, later.epochs, later.reason) == (Outcome.FAILED, 2, "ValueError: x")
    assert ledger.end("t", errored=False, last=epoch(4)) is ledger.ended("t")
    ledger.on_trial_start(0, [], trial("t"))  # started again (resumed, retried): open again
    assert ledger.ended("t") is None
    assert ledger.end("t", errored=False, last=epoch(4)).outcome is Outcome.COMPLETED


def test_the_callbacks_events_decide_when_the_searcher_did_not():
    journal: list = []
    ledger = Ledger(3, stop_tag="asha")
    ledger.journal = lambda trial_id, result: journal.append((trial_id, result["epoch"]))
    a, b = trial("a"), trial("b")
    for n in (1, 2, 3):
        ledger.on_trial_result(0, [a, b], a, epoch(n))
    ledger.on_trial_result(0, [a, b], b, epoch(1))
    ledger.on_trial_complete(0, [a, b], a)
    ledger.on_trial_error(0, [a, b], b)
    assert journal == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]  # each result once
    assert ledger.ended("a") == TrialEnd(Outcome.COMPLETED, 3)
    assert (ledger.ended("b").outcome, ledger.ended("b").epochs) == (Outcome.FAILED, 1)
    assert "error.txt" in ledger.ended("b").reason  # Ray's error file could not be read


def test_a_search_ended_as_a_whole_ends_its_running_trials_unless_interrupted():
    ledger = Ledger(3, stop_tag="asha")
    running, pending = trial("a"), trial("p", status="PENDING")
    ledger.on_trial_result(0, [running], running, epoch(1))
    ledger.on_experiment_end([running, pending])  # a time limit
    assert ledger.ended("a") == TrialEnd(Outcome.KILLED, 1) and ledger.ended("p") is None

    interrupted = Ledger(3, stop_tag="asha")
    interrupted.on_trial_result(0, [running], running, epoch(1))
    interrupted.interrupted = True
    interrupted.on_trial_result(0, [running], running, epoch(2))  # trained again on resume
    interrupted.on_experiment_end([running])
    assert interrupted.ended("a") is None and interrupted.last["a"]["epoch"] == 1


def test_a_ledger_pickles_empty_and_one_pickle_shares_one_ledger():
    ledger = Ledger(6, stop_tag="asha")
    ledger.stop("a")
    ledger.end("a", errored=False, last=epoch(2))
    ledger.journal = print
    holders = {"scheduler": SimpleNamespace(ledger=ledger), "mirror": SimpleNamespace(
        ledger=ledger)}
    back = pickle.loads(ray.cloudpickle.dumps(holders))  # as tuner.pkl holds them
    again = back["scheduler"].ledger
    assert again is back["mirror"].ledger and again is not ledger
    assert (again.max_epochs, again.stop_tag) == (6, "asha")
    assert (again.stopped, again.ends, again.last, again.journal) == (set(), {}, {}, None)


def record(trial_id: str, outcome: Outcome, status: str, results: list[dict],
           error=None) -> TrialRecord:
    return trial_record(trial_id, outcome=outcome, status=status, results=results, error=error)


def test_a_resumed_launch_loads_what_the_record_holds():
    ledger = Ledger(4, stop_tag="asha")
    ledger.restore(Results(metric="val_acc", mode="max", trials=[
        record("done", Outcome.COMPLETED, "TERMINATED", [epoch(1), epoch(4)]),
        record("cut", Outcome.STOPPED, "TERMINATED", [epoch(1)]),
        record("bad", Outcome.FAILED, "ERROR", [epoch(1)], error="ValueError: x"),
        record("live", Outcome.KILLED, "RUNNING", [epoch(1), epoch(2)]),
    ]))
    assert ledger.stopped == {"cut"}
    assert ledger.ended("cut") == TrialEnd(Outcome.STOPPED, 1, stopped_by="asha")
    assert ledger.ended("bad") == TrialEnd(Outcome.FAILED, 1, "ValueError: x")
    assert ledger.ended("done") == TrialEnd(Outcome.COMPLETED, 4)
    assert ledger.ended("live") is None and ledger.last["live"]["epoch"] == 2


def test_the_front_so_far_is_of_the_completed_trials_holding_every_constraint():
    ledger = Ledger(4, stop_tag="asha")
    ledger.stop("cut")
    objectives, constraints = (("val_acc", "max"), ("params", "min")), (("params", "max", 1e5),)
    assert ledger.front(objectives, constraints) == []
    for trial_id, acc, params, epochs in (("big", 0.9, 9e4, 4), ("small", 0.7, 2e4, 4),
                                          ("behind", 0.6, 5e4, 4), ("cut", 0.99, 1e3, 2),
                                          ("huge", 0.95, 2e5, 4)):
        ledger.end(trial_id, errored=False, last=epoch(epochs, val_acc=acc, params=params))
    # cut was stopped early, huge breaks the constraint, behind is dominated by small
    assert ledger.front(objectives, constraints) == ["big", "small"]
    assert ledger.front(objectives) == ["big", "small", "huge"]  # no constraint: huge is on it
    # a trial completing later moves it (the front is sorted again, not read from before)
    ledger.end("better", errored=False, last=epoch(4, val_acc=0.96, params=1e3))
    assert ledger.front(objectives, constraints) == ["better"]
