"""The scheduler registry, and scheduler state that survives a driver restart exactly."""

import json
import pickle
import random
from types import SimpleNamespace

import pytest
import ray.cloudpickle
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from trials import FakeTrial

from search.engine.ledger import Ledger
from search.engine.schedulers import SchedulerRecord, build_scheduler, recording
from search.spec import schedulers as registry

ASHA = registry.ASHA(grace_period=1, reduction_factor=3, brackets=1)


def scheduler(spec=ASHA, max_epochs=9):
    built = build_scheduler(spec, max_epochs, Ledger(max_epochs, stop_tag=spec.type))
    built.set_search_properties("val_acc", "max")
    return built


def trial(trial_id):
    return FakeTrial(trial_id)


def script(n_trials=12, max_epochs=9, seed=0):
    """A search's events, trial by trial (FIFO order, one at a time): each trial reports epochs
    until the scheduler stops it. Scores are random but fixed by the seed."""
    rng = random.Random(seed)
    return [(f"t{i}", [rng.random() for _ in range(max_epochs)]) for i in range(n_trials)]


def run(sched, events, decisions):
    for trial_id, scores in events:
        sched.on_trial_add(None, trial(trial_id))
        for epoch, score in enumerate(scores, 1):
            result = {"epoch": epoch, "val_acc": score}
            decision = sched.on_trial_result(None, trial(trial_id), result)
            decisions.append((trial_id, epoch, decision))
            if decision == TrialScheduler.STOP:
                break
        else:
            sched.on_trial_complete(None, trial(trial_id), result)


# One bracket (the default): with several, ASHA draws each NEW trial's bracket at random (numpy's
# global generator, unseeded), so only the restored trials' brackets can be exact (tested below).
@pytest.mark.parametrize("reduction_factor", [2, 3])
@pytest.mark.parametrize("cut", [1, 4, 8])
def test_a_restored_asha_stops_exactly_the_trials_an_uninterrupted_one_stops(reduction_factor,
                                                                            cut):
    spec = registry.ASHA(grace_period=1, reduction_factor=reduction_factor, brackets=1)
    events = script()
    alone: list = []
    run(scheduler(spec), events, alone)

    first, resumed = scheduler(spec), []
    run(first, events[:cut], resumed)
    # The driver dies; the record holds the scheduler's state as JSON. A fresh scheduler (what
    # Tune rebuilds from tuner.pkl) loads it, then sees the trials Tune restores, then the rest.
    saved = json.loads(json.dumps(first.state()))
    second = scheduler(spec)
    second.load_state(saved)
    second.ledger.stopped |= set(saved["stopped"])  # what the launch loads from the record
    run(second, events[cut:], resumed)

    assert resumed == alone
    assert second.ledger.stopped == {t for t, e, d in alone if d == TrialScheduler.STOP and e < 9}
    assert second.state()["stopped"] == sorted(second.ledger.stopped)
    assert any(d == TrialScheduler.STOP for _, _, d in alone)  # the script exercises stopping


def test_without_its_state_a_restored_asha_decides_differently():
    """What the record prevents (measured +20 % epochs in a real search): empty rungs."""
    events = script()
    alone: list = []
    run(scheduler(), events, alone)
    first, forgetful = scheduler(), []
    run(first, events[:4], forgetful)
    run(scheduler(), events[4:], forgetful)
    assert forgetful != alone


def test_a_restored_trial_goes_back_to_its_bracket():
    spec = registry.ASHA(grace_period=1, reduction_factor=2, brackets=3)
    first = scheduler(spec)
    for i in range(20):
        first.on_trial_add(None, trial(f"t{i}"))
    saved = json.loads(json.dumps(first.state()))
    second = scheduler(spec)
    second.load_state(saved)
    for i in range(20):
        second.on_trial_add(None, trial(f"t{i}"))
    assert second.state()["brackets"] == saved["brackets"]
    assert len(set(saved["brackets"].values())) > 1  # the draw used several brackets


def test_state_of_a_scheduler_with_other_rungs_is_refused():
    saved = scheduler(max_epochs=9).state()
    with pytest.raises(ValueError, match="rungs at epochs"):
        scheduler(max_epochs=3).load_state(saved)  # a rung it lacks (max_epochs only grows)
    with pytest.raises(ValueError, match="rungs at epochs"):
        scheduler(registry.ASHA(grace_period=2, reduction_factor=3), 9).load_state(saved)


def test_a_larger_max_epochs_keeps_every_saved_rung_where_it_was_and_adds_empty_ones_above():
    """An experiment whose max_epochs is raised: ASHA's rungs lie at grace x factor^k, so the
    saved ones (epochs 1 and 3 at 9) are rungs of the larger scheduler too (1, 3, 9 at 27), with
    every recorded score; the new one starts empty, and a trial is judged there as usual."""
    first, decisions = scheduler(max_epochs=9), []
    run(first, script(n_trials=6, max_epochs=9), decisions)
    saved = json.loads(json.dumps(first.state()))
    larger = scheduler(max_epochs=27)
    larger.load_state(saved)
    before = {m: r for m, r in saved["rungs"][0]}
    after = {m: r for m, r in larger.state()["rungs"][0]}
    assert set(before) < set(after) and min(set(after) - set(before)) > max(before)
    assert {m: after[m] for m in before} == before and any(before.values())
    assert all(after[m] == {} for m in set(after) - set(before))
    # An ended trial Tune restores goes back to the bracket whose rungs hold it, with no draw.
    ended = next(iter(saved["rungs"][0][-1][1]))
    larger.on_trial_add(None, trial(ended))
    assert ended in larger.state()["brackets"]


def test_a_trial_restored_as_ended_that_runs_on_is_pending_again_holding_its_place():
    """The trials a launch continues (search.experiment.extend.runs_on) are TERMINATED in Ray's
    snapshot; Tune adds each restored trial through the scheduler, which makes them PENDING
    before Tune files them (and no other)."""
    from ray.tune.experiment import Trial
    from ray.tune.search import ConcurrencyLimiter

    import optuna
    from ray.tune.search.optuna import OptunaSearch

    limiter = ConcurrencyLimiter(OptunaSearch(
        space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)}, metric="val_acc",
        mode="max"), max_concurrent=1)
    controller = SimpleNamespace(search_alg=SimpleNamespace(searcher=limiter))
    for spec in (ASHA, registry.FIFO()):
        sched = scheduler(spec)
        sched.continued = {"a"}
        on, kept = (SimpleNamespace(trial_id=t, status=Trial.TERMINATED,
                                    set_status=lambda s, t=t: statuses.__setitem__(t, s))
                    for t in ("a", "b"))
        statuses: dict = {}
        sched.on_trial_add(controller, on)
        sched.on_trial_add(controller, kept)
        assert statuses == {"a": Trial.PENDING} and sched.continued == set()
        assert limiter.live_trials == {"a"}
        limiter.live_trials.clear()
        limiter.num_unfinished_live_trials = 0


def test_fifo_never_stops_a_trial():
    fifo = build_scheduler(registry.FIFO(), 3, Ledger(3, stop_tag="fifo"))
    decisions: list = []
    run(fifo, script(n_trials=5, max_epochs=3), decisions)
    assert len(decisions) == 15 and {d for _, _, d in decisions} == {TrialScheduler.CONTINUE}
    assert fifo.state()["stopped"] == []


def test_the_record_saves_at_every_snapshot_and_travels_with_its_scheduler():
    live = scheduler()
    record = SchedulerRecord(live)
    saved = []
    record.save = saved.append
    run(live, script(n_trials=4), [])
    assert record.get_state() is None  # nothing for Tune's pickle: the record holds it
    assert saved == [live.state()] and saved[0]["rungs"][0]
    # Tune pickles the scheduler and the callbacks together in tuner.pkl.
    restored = pickle.loads(ray.cloudpickle.dumps({"scheduler": live, "record": record}))
    assert restored["record"].scheduler is restored["scheduler"]
    assert restored["record"].save is None  # set again by the launch after a restore


def test_the_record_saves_the_last_decisions_when_the_experiment_ends():
    """Tune's last snapshot may precede the scheduler's last stops: the record saves again at
    the experiment's end, so `status` and the report know every trial ASHA stopped."""
    live = scheduler()
    record = SchedulerRecord(live)
    saved = []
    record.save = saved.append
    events = script(n_trials=6)
    run(live, events[:3], [])
    record.get_state()  # a snapshot mid-search
    run(live, events[3:], [])  # more stops, and no snapshot after them
    record.on_experiment_end(trials=[])
    assert saved[-1] == live.state() and saved[-1] != saved[0]
    assert len(saved[-1]["stopped"]) > len(saved[0]["stopped"])


class Culling(FIFOScheduler):
    """A scheduler that, at each result, stops every other trial through Tune's controller
    (as HyperBand stops the paused trials it drops)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list = []

    def on_trial_result(self, tune_controller, trial, result):
        for other in self.seen:
            tune_controller.stop_trial(other)
        self.seen = [trial]
        return TrialScheduler.PAUSE


class Controller:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop_trial(self, trial) -> None:
        self.stopped.append(trial.trial_id)


def test_a_trial_stopped_through_tunes_controller_is_the_ledgers_early_stop():
    culling = recording(Culling)(ledger=Ledger(3, stop_tag="culling"))
    controller = Controller()
    culling.on_trial_result(controller, trial("a"), {"epoch": 1})
    culling.on_trial_result(controller, trial("b"), {"epoch": 3})  # stops a, at epoch 1
    culling.on_trial_result(controller, trial("c"), {"epoch": 2})  # stops b, at its last epoch
    assert controller.stopped == ["a", "b"]  # Tune still stops them
    assert culling.ledger.stopped == {"a"}  # only a was stopped before its last epoch
    assert culling.state() == {"type": "culling", "stopped": ["a"]}
    # Tune pickles the scheduler in tuner.pkl: its class is found again by name.
    again = pickle.loads(ray.cloudpickle.dumps(culling))
    assert type(again) is type(culling) and type(culling).__module__ == "search.engine.schedulers"


class Pausing(FIFOScheduler):
    """A scheduler that pauses every trial at its first result and never runs one again."""

    def on_trial_result(self, tune_controller, trial, result):
        return TrialScheduler.PAUSE

    def choose_trial_to_run(self, tune_controller):
        return next((t for t in tune_controller.get_trials() if t.status == "PENDING"), None)


class Trials(Controller):
    def __init__(self, *trials) -> None:
        super().__init__()
        self.trials = list(trials)

    def get_trials(self) -> list:
        return self.trials

    def stop_trial(self, trial) -> None:
        super().stop_trial(trial)
        trial.status = "TERMINATED"


def test_paused_trials_nothing_will_run_again_are_stopped_not_left_for_ever():
    """Tune would wait for ever for trials a scheduler paused and never chooses, once nothing
    runs or waits: they are stopped (told to the ledger as the scheduler's early stops)."""
    pausing = recording(Pausing)(ledger=Ledger(3, stop_tag="pausing"))
    early, done, running = (FakeTrial(i) for i in "abc")
    controller = Trials(early, done, running)
    for trial, epoch in ((early, 1), (done, 3)):
        assert pausing.on_trial_result(controller, trial, {"epoch": epoch}) == "PAUSE"
        trial.status = "PAUSED"
    assert pausing.choose_trial_to_run(controller) is None
    assert controller.stopped == []  # c still runs: its result may still change things
    running.status = "TERMINATED"
    assert pausing.choose_trial_to_run(controller) is None
    assert controller.stopped == ["a", "b"] and pausing.ledger.stopped == {"a"}
