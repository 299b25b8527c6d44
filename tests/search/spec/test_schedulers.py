"""The `scheduler:` registry (search/spec/schedulers.py), one table row per entry: its section
validates in a spec, its stop tag and label, its rungs for a few budgets, and the Ray scheduler a
launch builds from it compares trials at exactly those rungs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from search.cli.spec_commands import rungs_text
from search.engine import compat
from search.engine.ledger import Ledger
from search.engine.schedulers import Recording, build_scheduler, ray_class
from search.report import curves
from search.spec import schedulers as registry
from search.spec.model import parse_spec


def spec_with(scheduler: dict | None, max_epochs: int = 9):
    return parse_spec({"name": "s", "data": {"dataset": "digits"},
                       "budget": {"trials": 4, "max_epochs": max_epochs},
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
        trial = SimpleNamespace(trial_id=f"t{number}")
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


RAY_RUNGS = {
    "asha": asha_compared_at,
    "fifo": lambda scheduler, max_epochs: [],  # no brackets: no trial is ever compared
}

# type: (stop tag, label)
NAMES = {"asha": ("asha", "ASHA"), "fifo": ("fifo", "FIFO")}

# (section, {max_epochs: rungs per bracket})
RUNGS = [
    ({"type": "asha"}, {1: [[]], 3: [[1]], 9: [[1, 3]], 10: [[1, 3, 9]], 30: [[1, 3, 9, 27]]}),
    ({"type": "asha", "grace_period": 2, "reduction_factor": 2, "brackets": 3},
     {2: [[], [], []], 8: [[2, 4], [4], []], 20: [[2, 4, 8, 16], [4, 8, 16], [8, 16]]}),
    # a milestone between epochs is reached at the next whole epoch (2.5 -> 3, 6.25 -> 7)
    ({"type": "asha", "reduction_factor": 2.5}, {10: [[1, 3, 7]], 16: [[1, 3, 7]]}),
    ({"type": "fifo"}, {1: [], 9: [], 30: []}),
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
        assert RAY_RUNGS[entry.type](built(entry, max_epochs), max_epochs) == rungs, max_epochs


@pytest.mark.parametrize("section, expected", RUNGS)
def test_the_report_draws_the_rungs_of_a_record_without_saved_rungs(section, expected):
    for max_epochs, rungs in expected.items():
        spec = spec_with(section, max_epochs)
        assert curves.rungs(spec.resolved(), {}) == curves.Rungs(
            spec.scheduler.label, tuple(tuple(bracket) for bracket in rungs))


@pytest.mark.parametrize("name", ["asha", "fifo"])
def test_an_asynchronous_scheduler_needs_no_more_trials_out_than_run(name):
    entry = registry.SCHEDULERS[name]()
    assert [entry.trials_out(9, running) for running in (1, 2, 8)] == [1, 2, 8]


def test_the_default_is_asha_with_one_bracket():
    assert registry.DEFAULT is registry.ASHA
    assert spec_with(None).scheduler == registry.ASHA()


def test_a_section_of_another_version_is_not_guessed():
    assert registry.section({"type": "pbt"}) is None
    assert registry.section({"type": "asha", "grace_priod": 2}) is None
    assert registry.section(None) == registry.DEFAULT()  # a record from before the section
    assert registry.label_of("pbt") == "pbt"


@pytest.mark.parametrize("scheduler, max_epochs, text", [
    ({"type": "asha"}, 9, " (ASHA rungs at epochs [1, 3])"),
    ({"type": "asha", "brackets": 2}, 9, " (ASHA rungs at epochs [1, 3] | [3], one list per "
                                         "bracket)"),
    ({"type": "asha"}, 1, ""),
    ({"type": "fifo"}, 9, ""),
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
