"""What a launch does with the directory it finds: one rule, one table."""

import pytest
from search.experiment.decide import Action, decide, ray_saved, spec_changes
from search.experiment.state import State, Status

SPEC = {"name": "exp", "budget": {"trials": 6, "max_epochs": 10}, "space": {"lr": {"low": 0.01}}}
CHANGED = {"name": "exp", "budget": {"trials": 8, "max_epochs": 10}, "space": {"lr": {"low": 0.01}}}


def state(status: Status, spec_hash: str = "same", reason=None) -> State:
    return State(name="exp", spec_hash=spec_hash, parent_run_id="parent", tracking_uri="u",
                 status=status, created_at=1.0, updated_at=2.0, reason=reason)


R, F, I, A = Status.RUNNING, Status.FINISHED, Status.INTERRUPTED, Status.ABORTED
CASES = [
    # state (status, hash) or None, ray_saved -> action, parent run kept
    (None, False, Action.NEW, ""),
    (None, True, Action.REFUSE, ""),  # a Ray experiment without our record
    ((A, "same"), True, Action.RESTART, ""),
    ((A, "same"), False, Action.RESTART, ""),
    ((A, "other"), True, Action.RESTART, ""),  # aborted wins over a changed spec
    ((R, "other"), True, Action.REFUSE, ""),
    ((I, "other"), False, Action.REFUSE, ""),
    ((F, "other"), True, Action.REFUSE, ""),
    ((F, "same"), True, Action.FINISHED, "parent"),
    ((F, "same"), False, Action.FINISHED, "parent"),
    ((R, "same"), True, Action.RESUME, "parent"),  # the driver crashed: resume
    ((I, "same"), True, Action.RESUME, "parent"),  # Ctrl+C: resume
    ((R, "same"), False, Action.NEW, "parent"),  # died before Ray's first snapshot
    ((I, "same"), False, Action.NEW, "parent"),
]


@pytest.mark.parametrize("found, saved, action, parent", CASES)
def test_decide_table(found, saved, action, parent):
    current = None if found is None else state(*found)
    # Saved under another hash, the experiment had another seed (a larger budget: GROWTH).
    decision = decide(current, {**SPEC, "sampler": {"seed": 1}}, SPEC, "same", saved)
    assert decision.action is action
    assert decision.parent_run_id == parent
    assert decision.reason and "\n" not in decision.reason


SEEDED = {**SPEC, "sampler": {"seed": 1}}
MORE_EPOCHS = {**SPEC, "budget": {"trials": 6, "max_epochs": 12}}
BOTH = {**SPEC, "budget": {"trials": 9, "max_epochs": 12}}
FEWER = {**SPEC, "budget": {"trials": 4, "max_epochs": 10}}
MORE_AND_SEEDED = {**CHANGED, "sampler": {"seed": 1}}
MORE_TRIALS_FEWER_EPOCHS = {**SPEC, "budget": {"trials": 8, "max_epochs": 9}}
GROWTH = [
    # status, the launch's spec, ray saved -> action, the changes it names
    (F, CHANGED, True, Action.EXTEND, ("budget.trials: 6 -> 8",)),
    (I, CHANGED, True, Action.EXTEND, ("budget.trials: 6 -> 8",)),
    (R, CHANGED, True, Action.EXTEND, ("budget.trials: 6 -> 8",)),  # a crashed driver
    (F, MORE_EPOCHS, True, Action.EXTEND, ("budget.max_epochs: 10 -> 12",)),
    (I, BOTH, True, Action.EXTEND, ("budget.max_epochs: 10 -> 12", "budget.trials: 6 -> 9")),
    (R, CHANGED, False, Action.NEW, ("budget.trials: 6 -> 8",)),  # nothing computed yet
    (F, SPEC, True, Action.EXTEND, ()),  # this spec under another hash: killed mid-extension
    (A, CHANGED, True, Action.RESTART, ()),  # aborted wins over a larger budget
    (F, FEWER, True, Action.REFUSE, (
        "budget.trials: 6 -> 4 (a budget can be raised to extend an experiment, never "
        "lowered)",)),
    (F, SEEDED, True, Action.REFUSE, ("sampler.seed: (absent) -> 1",)),
    (I, MORE_AND_SEEDED, True, Action.REFUSE, (  # a larger budget and another change
        "budget.trials: 6 -> 8", "sampler.seed: (absent) -> 1")),
    (F, MORE_TRIALS_FEWER_EPOCHS, True, Action.REFUSE, (
        "budget.max_epochs: 10 -> 9 (a budget can be raised to extend an experiment, never "
        "lowered)", "budget.trials: 6 -> 8")),
]


@pytest.mark.parametrize("status, new, saved, action, changes", GROWTH)
def test_a_larger_budget_extends_the_experiment_and_anything_else_is_refused(
        status, new, saved, action, changes):
    decision = decide(state(status, "old"), SPEC, new, "new", saved)
    assert decision.action is action, decision.reason
    assert decision.changes == changes
    if action in (Action.EXTEND, Action.NEW):
        assert decision.parent_run_id == "parent"  # one MLflow parent for the whole search


def test_refuse_lists_the_changes_and_what_to_do():
    decision = decide(state(R, "old"), SPEC, SEEDED, "new", True)
    assert decision.action is Action.REFUSE
    assert decision.changes == ("sampler.seed: (absent) -> 1",)
    assert "--name NEW" in decision.reason and "old one is kept" in decision.reason
    assert "only budget.trials and budget.max_epochs may grow" in decision.reason
    assert "old" in decision.reason and "new" in decision.reason  # both hashes
    assert decide(state(R, "old"), None, CHANGED, "new", True).changes == ()  # no saved spec
    assert decide(state(R, "old"), None, CHANGED, "new", True).action is Action.REFUSE


def test_refuse_without_record_says_what_to_do():
    reason = decide(None, None, SPEC, "h", True).reason
    assert "without a resnet-search record" in reason and "--name" in reason


def test_restart_names_the_abort():
    reason = decide(state(A, reason="3 trials raised the same error"), None, SPEC, "x", True).reason
    assert "aborted (3 trials raised the same error)" in reason and "moved aside" in reason


CHANGES = [
    (SPEC, SPEC, []),
    ({"a": 1}, {"a": 2}, ["a: 1 -> 2"]),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}, ["a.c: 2 -> 3"]),
    ({"a": 1}, {"a": 1, "b": "x"}, ["b: (absent) -> 'x'"]),
    ({"a": 1, "b": {"c": None}}, {"a": 1}, ["b.c: None -> (absent)"]),
    ({"a": 1}, {"a": 1.0}, ["a: 1 -> 1.0"]),  # another type hashes differently
    ({"a": False}, {"a": 0}, ["a: False -> 0"]),
    ({"l": [1, 2]}, {"l": [1, 3]}, ["l: [1, 2] -> [1, 3]"]),  # lists are leaves
    ({"z": 1, "a": 1}, {"z": 2, "a": 2}, ["a: 1 -> 2", "z: 1 -> 2"]),  # sorted
    ({"a": {"b": 1}}, {"a": 5}, ["a: (absent) -> 5", "a.b: 1 -> (absent)"]),
    ({"a": {}}, {"a": {"b": 1}}, ["a: {} -> (absent)", "a.b: (absent) -> 1"]),
]


@pytest.mark.parametrize("old, new, expected", CHANGES)
def test_spec_changes(old, new, expected):
    assert spec_changes(old, new) == expected


def test_spec_changes_shows_values_short():
    (line,) = spec_changes({"s": "x" * 500}, {"s": "y"})
    assert len(line) < 120


@pytest.mark.parametrize("files, saved", [
    ((), False),
    (("tuner.pkl",), False),  # written before the first trial: nothing to restore yet
    (("experiment_state-2026-01-01_00-00-00.json",), False),
    (("tuner.pkl", "experiment_state-2026-01-01_00-00-00.json"), True),
])
def test_ray_saved(tmp_path, files, saved):
    for name in files:
        (tmp_path / name).write_text("{}")
    assert ray_saved(tmp_path) is saved
    assert ray_saved(tmp_path / "absent") is False
