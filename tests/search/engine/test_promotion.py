"""Promotion-based ASHA and PASHA (search/engine/promotion.py): their pure rules as tables, the
paper's promotion rule on a driven scheduler, and state that survives a driver restart exactly
(a relaunched driver pauses, promotes and stops exactly the trials an uninterrupted one does)."""

from __future__ import annotations

import hashlib
import json
import math
import random

import pytest
from ray.tune.experiment import Trial as RayTrial
from ray.tune.schedulers import TrialScheduler
from trials import FakeTrial

from search.engine.ledger import Ledger
from search.engine.promotion import noise_epsilon, promotable, soft_ranking_changed
from search.engine.schedulers import build_scheduler
from search.spec import schedulers as registry

PAUSE, CONTINUE, STOP = TrialScheduler.PAUSE, TrialScheduler.CONTINUE, TrialScheduler.STOP


# ---- the pure rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("rung, promoted, eta, waiting, expected", [
    ({}, [], 3, [], []),
    ({"a": 0.9, "b": 0.5}, [], 3, ["a", "b"], []),  # floor(2/3) = 0: nobody yet
    ({"a": 0.9, "b": 0.5, "c": 0.7}, [], 3, ["a", "b", "c"], ["a"]),  # the top third
    ({"a": 0.9, "b": 0.5, "c": 0.7}, ["a"], 3, ["b", "c"], []),  # a was promoted already
    ({"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.8, "e": 0.1, "f": 0.2}, ["a"], 3,
     ["b", "c", "d", "e", "f"], ["d"]),  # top 2 of 6: a (done), d
    ({"a": 0.9, "b": 0.5, "c": 0.7}, [], 3, ["b", "c"], []),  # a is not waiting (running)
    ({"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.8}, [], 2, ["a", "b", "c", "d"], ["a", "d"]),
    ({"a": -math.inf, "b": 0.1, "c": -math.inf}, [], 3, ["a", "b", "c"], ["b"]),  # diverged last
    ({"a": 0.5, "b": 0.5, "c": 0.5}, [], 3, ["a", "b", "c"], ["a"]),  # a tie: the first recorded
])
def test_promotable_is_the_rungs_top_share_not_yet_promoted(rung, promoted, eta, waiting,
                                                            expected):
    assert promotable(rung, promoted, eta, waiting) == expected


@pytest.mark.parametrize("top, previous, epsilon, changed", [
    ({"a": 0.9}, {"a": 0.1}, 0.0, False),  # one trial: no ranking
    ({"a": 0.9, "b": 0.8}, {"a": 0.6, "b": 0.5}, 0.0, False),  # same order
    ({"a": 0.9, "b": 0.8}, {"a": 0.5, "b": 0.6}, 0.0, True),  # swapped
    ({"a": 0.9, "b": 0.8}, {"a": 0.5, "b": 0.6}, 0.1, False),  # swapped within epsilon
    ({"a": 0.9, "b": 0.8}, {"a": 0.5, "b": 0.6}, 0.05, True),  # by more than epsilon
    ({"a": 0.9, "b": 0.8, "c": 0.7}, {"a": 0.7, "b": 0.5, "c": 0.6}, 0.0, True),
    ({"a": 0.9, "b": 0.8, "c": 0.7}, {"a": 0.7, "b": 0.6, "c": 0.5, "d": 0.9}, 0.0, False),
    # groups walk out from the k-th below while within epsilon of it
    ({"c": 0.9, "a": 0.8, "b": 0.7}, {"a": 0.70, "b": 0.65, "c": 0.60}, 0.06, True),
    ({"c": 0.9, "a": 0.8, "b": 0.7}, {"a": 0.70, "b": 0.65, "c": 0.60}, 0.11, False),
])
def test_pasha_grows_only_when_a_top_trial_leaves_its_group_below(top, previous, epsilon,
                                                                 changed):
    assert soft_ranking_changed(top, previous, epsilon) is changed


@pytest.mark.parametrize("curves, low, high, expected", [
    ({}, 0, 3, None),
    ({"a": {1: 0.1, 2: 0.2, 3: 0.3}, "b": {1: 0.0, 2: 0.1, 3: 0.2}}, 1, 3, None),  # never flip
    # b above a at 3, below at 2, above again at 1: flipped and back, gap 0.05 at epoch 3
    ({"a": {1: 0.1, 2: 0.3, 3: 0.30}, "b": {1: 0.2, 2: 0.2, 3: 0.35}}, 1, 3, 0.05),
    # flipped once only (b was below at 1 and 2, above at 3): not noise, a real overtaking
    ({"a": {1: 0.3, 2: 0.3, 3: 0.30}, "b": {1: 0.2, 2: 0.2, 3: 0.35}}, 1, 3, None),
])
def test_pashas_epsilon_is_the_gap_of_pairs_whose_order_flipped_and_flipped_back(
        curves, low, high, expected):
    found = noise_epsilon(curves, low, high)
    assert found == (None if expected is None else pytest.approx(expected))


# ---- a driven scheduler -----------------------------------------------------------------------

def pending(trial_id: str) -> FakeTrial:
    return FakeTrial(trial_id, status=RayTrial.PENDING)


class Controller:
    def __init__(self, scheduler) -> None:
        self.scheduler, self.trials = scheduler, []
        self.stopped: list[str] = []

    def get_trials(self):
        return self.trials

    def stop_trial(self, trial) -> None:
        assert trial.status == RayTrial.PAUSED
        self.scheduler.on_trial_remove(self, trial)
        trial.status = RayTrial.TERMINATED
        self.stopped.append(trial.trial_id)


def built(entry, max_epochs: int):
    scheduler = build_scheduler(entry, max_epochs, Ledger(max_epochs, entry.stop_tag))
    scheduler.set_search_properties("val_acc", "max")
    return scheduler


def score(trial_id: str, epoch: int) -> float:
    return random.Random(f"{trial_id}:{epoch}").random()


def tied(trial_id: str, epoch: int) -> float:
    """Scores with many ties, as an accuracy on a small validation set has."""
    return round(score(trial_id, epoch), 1)


def trial_name(number: int) -> str:
    """A trial id as Ray makes them: in no order related to when the trial was created."""
    return hashlib.sha1(str(number).encode()).hexdigest()[:8]


def run(scheduler, controller, n_trials: int, max_epochs: int, log: list, stop_after=None,
        value=score):
    """One trial at a time, as a one-slot launch: a new trial is added only when none waits to
    run (the limiter: paused trials hold no place), the scheduler chooses which runs. Stops
    (returns False) after `stop_after` results, as a killed driver."""
    results = 0
    while True:
        if not any(t.status == RayTrial.PENDING for t in controller.trials) and \
                len(controller.trials) < n_trials:
            controller.trials.append(pending(trial_name(len(controller.trials))))
            scheduler.on_trial_add(controller, controller.trials[-1])
        trial = scheduler.choose_trial_to_run(controller)
        if trial is None:
            return True
        log.append(("run", trial.trial_id, trial.epoch))
        trial.status = RayTrial.RUNNING
        while trial.status == RayTrial.RUNNING:
            trial.epoch += 1
            decision = scheduler.on_trial_result(controller, trial, {
                "epoch": trial.epoch, "val_acc": value(trial.trial_id, trial.epoch)})
            log.append((trial.trial_id, trial.epoch, decision))
            results += 1
            if decision == PAUSE:
                trial.status = RayTrial.PAUSED
            elif trial.epoch == max_epochs:
                scheduler.on_trial_complete(controller, trial, {"epoch": trial.epoch})
                trial.status = RayTrial.TERMINATED
            if stop_after is not None and results >= stop_after:
                return False


@pytest.mark.parametrize("type_", ["promotion_asha", "pasha"])
def test_a_trial_waits_paused_at_its_rung_and_goes_on_from_where_it_paused(type_):
    entry = registry.SCHEDULERS[type_]()
    scheduler, log = built(entry, 9), []
    controller = Controller(scheduler)
    assert run(scheduler, controller, 40, 9, log)
    epochs: dict[str, list[int]] = {}
    for event in log:
        if event[0] != "run":
            epochs.setdefault(event[0], []).append(event[1])
    for trial_id, seen in epochs.items():
        assert seen == list(range(1, len(seen) + 1))  # no epoch lost or repeated on resume
    resumed = [e for e in log if e[0] == "run" and e[2] > 0]
    assert resumed, "some paused trial is promoted later"
    assert all(e[2] in (1, 3) for e in resumed)  # from a rung
    # every trial not run to the budget waited paused and was stopped at the end
    ended_early = {t.trial_id for t in controller.trials if t.epoch < 9}
    assert set(controller.stopped) == ended_early == scheduler.ledger.stopped
    # a trial went on past a rung only while among the top floor(n / eta) of the n recorded
    # there then (the paper's rule: a trial promoted earlier may later fall out of the top)
    milestones = scheduler.milestones
    recorded: dict[int, dict[str, float]] = {m: {} for m in milestones}
    for event in log:
        if event[0] == "run":
            _, trial_id, epoch = event
            if epoch in recorded:  # resumed from its rung: promoted now
                assert trial_id in top_share(recorded[epoch], 3)
            continue
        trial_id, epoch, decision = event
        if epoch in recorded:
            recorded[epoch][trial_id] = score(trial_id, epoch)
            if decision == CONTINUE:  # promoted at once
                assert trial_id in top_share(recorded[epoch], 3)


def top_share(rung: dict[str, float], eta: float) -> list[str]:
    return sorted(rung, key=lambda t: -rung[t])[:int(len(rung) / eta)]


def test_promotion_asha_promotes_from_the_highest_rung_first():
    scheduler = built(registry.PromotionASHA(), 9)
    controller = Controller(scheduler)
    for name, rung, value in [("a", 0, 0.1), ("b", 0, 0.2), ("c", 0, 0.9), ("x", 1, 0.5),
                              ("y", 1, 0.4), ("z", 1, 0.95)]:
        trial = pending(name)
        trial.status = RayTrial.PAUSED
        controller.trials.append(trial)
        scheduler.rungs[rung][name] = value
        scheduler.paused[name] = rung
    assert scheduler.choose_trial_to_run(controller).trial_id == "z"  # rung 1 before rung 0
    controller.trials[-1].status = RayTrial.RUNNING
    assert scheduler.choose_trial_to_run(controller).trial_id == "c"
    controller.trials[2].status = RayTrial.RUNNING
    assert scheduler.choose_trial_to_run(controller) is None  # a, b, x, y wait; none runs


def test_a_trial_that_reaches_its_rung_promotable_goes_on_without_a_pause():
    scheduler = built(registry.PromotionASHA(), 9)
    controller = Controller(scheduler)
    decisions = []
    for name, value in [("a", 0.1), ("b", 0.2), ("c", 0.9)]:
        trial = pending(name)
        controller.trials.append(trial)
        trial.status = RayTrial.RUNNING
        decisions.append(scheduler.on_trial_result(controller, trial,
                                                   {"epoch": 1, "val_acc": value}))
        if decisions[-1] == PAUSE:
            trial.status = RayTrial.PAUSED
    assert decisions == [PAUSE, PAUSE, CONTINUE]


def test_a_trial_that_ends_itself_or_reaches_the_budget_is_never_paused():
    scheduler = built(registry.PromotionASHA(), 9)
    controller = Controller(scheduler)
    trial = pending("a")
    assert scheduler.on_trial_result(controller, trial, {"epoch": 1, "val_acc": 0.1,
                                                         "outcome": "diverged"}) == CONTINUE
    assert scheduler.on_trial_result(controller, trial, {"epoch": 9, "val_acc": 0.1}) == STOP
    assert not scheduler.paused


@pytest.mark.parametrize("type_", ["promotion_asha", "pasha"])
@pytest.mark.parametrize("cut", [0.02, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("value", [score, tied], ids=["distinct", "tied"])
def test_a_restored_scheduler_decides_exactly_as_an_uninterrupted_one(type_, cut, value):
    """Killed after `cut` results, its state saved as the record saves it (JSON, keys sorted)
    and loaded into a new scheduler, and the trials handed back as Tune hands them after a
    restart (every unfinished one PENDING): the paused ones wait again, and every later
    decision is the uninterrupted one's, also where trials tie at a rung (broken by the order
    they were recorded in, which the saved state keeps)."""
    entry = registry.SCHEDULERS[type_]()
    alone, alone_log = built(entry, 27), []
    alone_controller = Controller(alone)
    run(alone, alone_controller, 60, 27, alone_log, value=value)
    cut = int(cut * sum(e[0] != "run" for e in alone_log))  # results before the kill

    first, log = built(entry, 27), []
    controller = Controller(first)
    assert run(first, controller, 60, 27, log, stop_after=cut, value=value) is False
    saved = json.loads(json.dumps(first.state(), sort_keys=True))  # write_json_atomic's
    second = built(entry, 27)
    second.ledger.stopped |= set(saved["stopped"])
    second.load_state(saved)
    again = Controller(second)
    for trial in controller.trials:
        if trial.status != RayTrial.TERMINATED:
            trial.status = RayTrial.PENDING  # Tune's restore
        again.trials.append(trial)
        second.on_trial_add(again, trial)
    was_paused = {t.trial_id for t in controller.trials if t.trial_id in saved["paused"]}
    assert {t.trial_id for t in again.trials if t.status == RayTrial.PAUSED} == was_paused
    # the trials that ran or waited to run when the driver died wait to run again
    assert {t.trial_id for t in again.trials if t.status == RayTrial.PENDING} == {
        t.trial_id for t in controller.trials
        if t.status != RayTrial.TERMINATED and t.trial_id not in was_paused}
    assert run(second, again, 60, 27, log, value=value)
    assert [e for e in log if e[0] != "run"] == [e for e in alone_log if e[0] != "run"]
    assert second.ledger.stopped == alone.ledger.stopped


def test_state_of_a_scheduler_with_other_rungs_is_refused():
    scheduler = built(registry.PromotionASHA(), 9)
    scheduler.rungs[0]["a"] = 0.5
    other = built(registry.PromotionASHA(reduction_factor=2), 9)
    with pytest.raises(ValueError, match="rungs at epochs"):
        other.load_state(json.loads(json.dumps(scheduler.state())))
