"""The `scheduler:` registry (search/spec/schedulers.py), one table row per entry: its section
validates in a spec, its stop tag and label, its rungs for a few budgets, and the Ray scheduler a
launch builds from it compares trials at exactly those rungs."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ray.tune.schedulers import TrialScheduler
from trials import FakeTrial

from search.cli.spec_commands import rungs_text
from search.engine import compat
from search.engine.ledger import Ledger
from search.engine.samplers import build_searcher
from search.engine.schedulers import Recording, build_scheduler, ray_class
from search.report import curves
from search.spec import schedulers as registry
from search.spec.model import SpecError, parse_spec


def spec_with(scheduler: dict | None, max_epochs: int = 9):
    # DEHB's scheduler goes with DEHB's sampler only (search.spec.model.dehb_pair_problem).
    sampler = {"sampler": {"type": "dehb"}} if (scheduler or {}).get("type") == "dehb" else {}
    return parse_spec({"name": "s", "data": {"dataset": "digits"},
                       "budget": {"trials": 4, "max_epochs": max_epochs}, **sampler,
                       **({"scheduler": scheduler} if scheduler is not None else {}),
                       "space": {"lr": {"float": [0.001, 0.1]}}})


def built(section, max_epochs: int):
    scheduler = build_scheduler(section, max_epochs, Ledger(max_epochs, section.stop_tag))
    scheduler.set_search_properties("val_acc", "max")
    return scheduler


# --- how each Ray scheduler shows where it compares trials, read off the built object ---------

def asha_compared_at(scheduler, max_epochs: int) -> list[list[int]]:
    """Per bracket, the epochs at which a trial of that bracket was recorded at a rung, driving
    the first trial of each bracket (never stopped: it is compared with nobody) to the end."""
    np.random.seed(0)  # ASHA draws each trial's bracket from numpy's global generator
    brackets, found, number = compat.asha_brackets(scheduler), {}, 0
    while len(found) < len(brackets):
        trial = FakeTrial(f"t{number}")
        number += 1
        scheduler.on_trial_add(None, trial)
        index = brackets.index(compat.asha_assignment(scheduler)[trial.trial_id])
        if index in found:
            continue
        rungs, found[index], seen = compat.bracket_rungs(brackets[index]), [], 0
        for epoch in range(1, max_epochs + 1):
            scheduler.on_trial_result(None, trial, {"epoch": epoch, "val_acc": 0.5})
            recorded = sum(trial.trial_id in at for _, at in rungs)
            if recorded > seen and epoch < max_epochs:
                found[index].append(epoch)
            seen = recorded
    return [found[i] for i in range(len(brackets))]


class Driven(FakeTrial):
    """A trial these tests drive through HyperBand (which keys its brackets on the trial
    object): its score, and the epochs it was paused or stopped at."""

    def __init__(self, trial_id: str, score: float) -> None:
        super().__init__(trial_id, status="PENDING")
        self.score, self.events = score, []


class Controller:
    """Tune's controller as a scheduler calls it: it lists the trials, and stops those the
    scheduler paused and dropped."""

    def __init__(self, scheduler, trials: list[Driven]) -> None:
        self.scheduler, self.trials = scheduler, trials

    def get_trials(self) -> list[Driven]:
        return self.trials

    def stop_trial(self, trial: Driven) -> None:
        assert trial.status == "PAUSED", trial.status  # a running one is answered STOP
        self.scheduler.on_trial_remove(self, trial)
        trial.status = "TERMINATED"
        trial.events.append(trial.epoch)


def drive(scheduler, n_trials: int, out: int | None = None, crossing: bool = False
          ) -> list[Driven]:
    """Trials run one at a time as Tune's controller runs them: the trial the scheduler chooses
    runs until it is paused or stopped. With `out`, a trial is added only while fewer than that
    are out (Tune's concurrency limit, which counts waiting and paused trials); without, all
    are added first (none joins a bracket late). `crossing`: each trial's curve is a line of its
    own slope, so that rankings change from rung to rung (two lines cross once: no order flips
    and flips back, which PASHA would take for noise)."""
    rng = np.random.default_rng(0)
    trials: list[Driven] = []
    controller = Controller(scheduler, trials)

    def add() -> None:
        trials.append(Driven(f"t{len(trials)}", rng.random()))
        trials[-1].slope = rng.uniform(-0.05, 0.05) if crossing else 0.01
        scheduler.on_trial_add(controller, trials[-1])

    while len(trials) < n_trials and (out is None or sum(
            t.status != "TERMINATED" for t in trials) < out):
        add()
    while (trial := scheduler.choose_trial_to_run(controller)) is not None:
        trial.status = "RUNNING"
        while trial.status == "RUNNING":
            trial.epoch += 1
            decision = scheduler.on_trial_result(controller, trial, {
                "epoch": trial.epoch,
                "val_acc": trial.score + trial.slope * trial.epoch})
            if decision == TrialScheduler.PAUSE:
                trial.status = "PAUSED"
            elif decision == TrialScheduler.STOP:
                scheduler.on_trial_complete(controller, trial, {"epoch": trial.epoch})
                trial.status = "TERMINATED"
            if decision != TrialScheduler.CONTINUE:
                trial.events.append(trial.epoch)
        while out is not None and len(trials) < n_trials and sum(
                t.status != "TERMINATED" for t in trials) < out:
            add()
    assert all(t.status == "TERMINATED" for t in trials)  # every trial ended
    return trials


def first_band(scheduler, trials: list[Driven]) -> dict[Any, list[Driven]]:
    """The trials of each bracket of HyperBand's first band, by its own record (it has no
    public one), in the order it opened them."""
    brackets: dict[Any, list[Driven]] = {}
    for trial in trials:
        bracket, band = scheduler._trial_info[trial]
        if band == 0:
            brackets.setdefault(bracket, []).append(trial)
    return brackets


def hyperband_compared_at(scheduler, max_epochs: int) -> list[list[int]]:
    """Per bracket of HyperBand's first band, the epochs at which it paused or stopped any of
    the bracket's trials, with enough trials added first to fill more than one band."""
    trials = drive(scheduler, n_trials=200)
    assert any(scheduler._trial_info[t][1] > 0 for t in trials)  # the first band is complete
    # The ledger heard of exactly the trials stopped before their last epoch.
    assert scheduler.ledger.stopped == {t.trial_id for t in trials if t.epoch < max_epochs}
    return [sorted({e for t in bracket for e in t.events if e < max_epochs})
            for bracket in first_band(scheduler, trials).values()]


def promotion_compared_at(scheduler, max_epochs: int) -> list[list[int]]:
    """The epochs at which promotion ASHA (or PASHA, whose top grows while rankings change:
    the curves cross) paused any trial, over 200 trials; every trial it did not run to the
    budget is the ledger's early stop."""
    trials = drive(scheduler, n_trials=200, crossing=True)
    assert scheduler.ledger.stopped == {t.trial_id for t in trials if t.epoch < max_epochs}
    return [sorted({e for t in trials for e in t.events if e < max_epochs})]


def dehb_compared_at(section, max_epochs: int) -> list[list[int]]:
    """Per bracket of DEHB's first round (one per budget, in the order it opens them), the
    epochs below the budget at which the scheduler stopped the bracket's trials, run one at a
    time with DEHB's own sampler deciding each trial's budget; each is the ledger's stop."""
    spec = spec_with(section.model_dump(), max_epochs)
    ledger = Ledger(max_epochs, section.stop_tag)
    searcher = build_searcher(spec, ledger)
    scheduler = build_scheduler(section, max_epochs, ledger)
    controller = SimpleNamespace(search_alg=SimpleNamespace(searcher=searcher))
    sampler = compat.optuna_study(searcher).sampler
    brackets: dict[int, set[int]] = {}
    count = len(section.rungs(max_epochs))
    for number in range(400):
        trial = FakeTrial(f"t{number}")
        searcher.suggest(trial.trial_id)
        bracket = sampler.jobs[compat.optuna_trials(searcher)[trial.trial_id].number][
            "bracket_id"]
        while trial.epoch < max_epochs:
            trial.epoch += 1
            result = {"epoch": trial.epoch, "val_acc": 0.5}
            searcher.on_trial_result(trial.trial_id, result)
            if scheduler.on_trial_result(controller, trial, result) == TrialScheduler.STOP:
                break
        searcher.on_trial_complete(trial.trial_id, result=result)
        if trial.epoch < max_epochs:
            assert trial.trial_id in ledger.stopped
        if bracket < count:
            brackets.setdefault(bracket, set()).add(trial.epoch)
    return [sorted(e for e in brackets[b] if e < max_epochs) for b in range(count)]


RAY_RUNGS = {
    "asha": lambda entry, max_epochs: asha_compared_at(built(entry, max_epochs), max_epochs),
    "hyperband": lambda entry, max_epochs: hyperband_compared_at(built(entry, max_epochs),
                                                                 max_epochs),
    "fifo": lambda entry, max_epochs: [],  # no brackets: no trial is ever compared
    "promotion_asha": lambda entry, max_epochs: promotion_compared_at(built(entry, max_epochs),
                                                                      max_epochs),
    "pasha": lambda entry, max_epochs: promotion_compared_at(built(entry, max_epochs),
                                                             max_epochs),
    "dehb": dehb_compared_at,
}

# type: (stop tag, label)
NAMES = {"asha": ("asha", "ASHA"), "hyperband": ("hyperband", "Hyperband"),
         "fifo": ("fifo", "FIFO"), "promotion_asha": ("promotion_asha", "promotion ASHA"),
         "pasha": ("pasha", "PASHA"), "dehb": ("dehb", "DEHB")}

# (section, {max_epochs: rungs per bracket})
RUNGS = [
    ({"type": "asha"}, {1: [[]], 3: [[1]], 9: [[1, 3]], 10: [[1, 3, 9]], 30: [[1, 3, 9, 27]]}),
    ({"type": "asha", "grace_period": 2, "reduction_factor": 2, "brackets": 3},
     {2: [[], [], []], 8: [[2, 4], [4], []], 20: [[2, 4, 8, 16], [4, 8, 16], [8, 16]]}),
    # a milestone between epochs is reached at the next whole epoch (2.5 -> 3, 6.25 -> 7)
    ({"type": "asha", "reduction_factor": 2.5}, {10: [[1, 3, 7]], 16: [[1, 3, 7]]}),
    # HyperBand fills its brackets largest first; the first runs every trial to the budget.
    ({"type": "hyperband"}, {1: [[]], 2: [[]], 3: [[], [1]], 4: [[], [1, 3]], 9: [[], [3], [1, 3]],
                             10: [[], [3, 9], [1, 3, 9]]}),
    ({"type": "hyperband", "reduction_factor": 2},
     {2: [[], [1]], 4: [[], [2], [1, 2]], 5: [[], [2, 4], [1, 2, 4]]}),
    ({"type": "fifo"}, {1: [], 9: [], 30: []}),
    ({"type": "promotion_asha"}, {1: [[]], 3: [[1]], 9: [[1, 3]], 30: [[1, 3, 9, 27]]}),
    ({"type": "promotion_asha", "grace_period": 2, "reduction_factor": 2},
     {8: [[2, 4]], 20: [[2, 4, 8, 16]]}),
    ({"type": "pasha"}, {1: [[]], 3: [[1]], 10: [[1, 3, 9]], 30: [[1, 3, 9, 27]]}),
    # DEHB's budgets max * 3^-k in whole epochs (1.33 -> 1); its first bracket runs them all,
    # its last only the budget. Two epochs at factor 3 are one budget: DE alone.
    ({"type": "dehb"}, {2: [[]], 4: [[1], []], 9: [[1, 3], [3], []],
                        12: [[1, 4], [4], []], 30: [[1, 3, 10], [3, 10], [10], []]}),
    ({"type": "dehb", "min_epochs": 2, "reduction_factor": 2},
     {20: [[2, 5, 10], [5, 10], [10], []]}),
]


def test_every_entry_has_a_row_in_each_table():
    assert set(RAY_RUNGS) == set(NAMES) == set(registry.SCHEDULERS)
    assert {row["type"] for row, _ in RUNGS} == set(registry.SCHEDULERS)


@pytest.mark.parametrize("name", sorted(registry.SCHEDULERS))
def test_an_entry_validates_in_a_spec_with_its_tag_and_label(name):
    spec = spec_with({"type": name})
    assert isinstance(spec.scheduler, registry.SCHEDULERS[name])
    assert (spec.scheduler.stop_tag, spec.scheduler.label) == NAMES[name]
    assert registry.label_of(spec.scheduler.stop_tag) == spec.scheduler.label
    assert registry.section(spec.resolved()["scheduler"]) == spec.scheduler  # as a record has it
    scheduler = built(spec.scheduler, 9)
    assert isinstance(scheduler, Recording)
    assert isinstance(scheduler, ray_class(spec.scheduler.ray_class))


@pytest.mark.parametrize("section, expected", RUNGS)
def test_rungs_per_bracket_are_where_the_ray_scheduler_compares(section, expected):
    for max_epochs, rungs in expected.items():
        entry = spec_with(section, max_epochs).scheduler
        assert entry.rungs(max_epochs) == rungs, max_epochs
        assert RAY_RUNGS[entry.type](entry, max_epochs) == rungs, max_epochs


@pytest.mark.parametrize("section, expected", RUNGS)
def test_the_report_draws_the_rungs_of_a_record_without_saved_rungs(section, expected):
    for max_epochs, rungs in expected.items():
        spec = spec_with(section, max_epochs)
        assert curves.rungs(spec.resolved(), {}) == curves.Rungs(
            spec.scheduler.label, tuple(tuple(bracket) for bracket in rungs))


@pytest.mark.parametrize("name", ["asha", "fifo", "promotion_asha", "pasha"])
def test_an_asynchronous_scheduler_needs_no_more_trials_out_than_run(name):
    entry = registry.SCHEDULERS[name]()
    assert [entry.trials_out(9, running) for running in (1, 2, 8)] == [1, 2, 8]


def test_the_default_is_promotion_asha_and_a_record_without_a_scheduler_ran_asha():
    assert registry.DEFAULT is registry.PromotionASHA
    assert spec_with(None).scheduler == registry.PromotionASHA()
    assert registry.LEGACY is registry.ASHA


def test_a_section_of_another_version_is_not_guessed():
    assert registry.section({"type": "pbt"}) is None
    assert registry.section({"type": "asha", "grace_priod": 2}) is None
    assert registry.section(None) == registry.ASHA()  # a record from before the section
    assert registry.label_of("pbt") == "pbt"


@pytest.mark.parametrize("scheduler, max_epochs, text", [
    ({"type": "asha"}, 9, " (ASHA rungs at epochs [1, 3])"),
    ({"type": "asha", "brackets": 2}, 9, " (ASHA rungs at epochs [1, 3] | [3], one list per "
                                         "bracket)"),
    ({"type": "asha"}, 1, ""),
    ({"type": "hyperband"}, 4, " (Hyperband rungs at epochs [] | [1, 3], one list per bracket)"),
    ({"type": "fifo"}, 9, ""),
    ({"type": "dehb"}, 9, " (DEHB rungs at epochs [1, 3] | [3] | [], one list per bracket)"),
])
def test_validate_names_the_rungs(scheduler, max_epochs, text):
    assert rungs_text(spec_with(scheduler, max_epochs).scheduler, max_epochs) == text


def test_rungs_match_ray_over_a_grid_of_settings():
    """The closed form against the object, over budgets and factors no table lists."""
    for grace in (1, 2, 3):
        for reduction in (2, 2.5, 3, 4):
            for max_epochs in range(grace, 40, 3):
                entry = registry.ASHA(grace_period=grace, reduction_factor=reduction, brackets=2)
                assert entry.rungs(max_epochs) == asha_compared_at(
                    built(entry, max_epochs), max_epochs), (grace, reduction, max_epochs)
                assert all(math.ceil(grace) <= e < max_epochs for b in entry.rungs(max_epochs)
                           for e in b)


def test_hyperband_rungs_match_ray_over_a_grid_of_settings():
    for reduction in (2, 2.5, 3, 4):
        for max_epochs in range(1, 40, 2):
            entry = registry.HyperBand(reduction_factor=reduction)
            assert entry.rungs(max_epochs) == hyperband_compared_at(
                built(entry, max_epochs), max_epochs), (reduction, max_epochs)


@pytest.mark.parametrize("reduction, max_epochs", [(2, 3), (3, 4), (3, 9), (2, 5), (3, 30),
                                                 (2.5, 17)])
def test_hyperband_keeps_one_more_trial_out_than_its_largest_bracket_takes(reduction,
                                                                           max_epochs):
    """With that many out, Ray's HyperBand opens every bracket of its band, and each takes as
    many trials as it does when all are added at once; with no more than the largest bracket
    out, a bracket can take every trial."""
    entry = registry.HyperBand(reduction_factor=reduction)
    out = entry.trials_out(max_epochs, 1)
    assert entry.trials_out(max_epochs, 500) == 500
    at_once = built(entry, max_epochs)
    sizes = [len(b) for b in first_band(at_once, drive(at_once, n_trials=400)).values()]
    assert out == max(sizes) + 1
    limited = built(entry, max_epochs)
    opened = first_band(limited, drive(limited, n_trials=3 * sum(sizes), out=out))
    assert len(opened) == len(entry.rungs(max_epochs)) == len(sizes)
    if (reduction, max_epochs) == (2, 3):  # its first bracket takes 3 trials: with 3 out...
        fewer = built(entry, max_epochs)
        assert len(first_band(fewer, drive(fewer, n_trials=40, out=out - 1))) == 1


def test_a_spec_that_keeps_too_few_trials_out_for_hyperband_is_refused():
    with pytest.raises(SpecError) as refused:
        parse_spec({"name": "s", "data": {"dataset": "digits"},
                    "budget": {"trials": 8, "max_epochs": 4},
                    "trial": {"max_concurrent": 3}, "scheduler": {"type": "hyperband"},
                    "space": {"lr": {"float": [0.001, 0.1]}}})
    assert str(refused.value) == (
        "<spec>: trial.max_concurrent: max_concurrent is 3 but scheduler hyperband needs 4 "
        "trials out at once at max_epochs 4 to fill its brackets (a waiting or paused trial "
        "uses no resources); raise it or leave it unset")


def test_dehb_needs_two_budgets():
    with pytest.raises(SpecError) as refused:
        spec_with({"type": "dehb", "min_epochs": 3}, max_epochs=3)
    assert "scheduler.min_epochs: min_epochs is 3 but must be < budget.max_epochs (3): DEHB " \
        "needs at least two budgets" in str(refused.value)
