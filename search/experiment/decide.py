"""What a launch does with the experiment directory it finds: one pure rule.

The launch reads the record (state, saved spec) and whether Ray has saved anything, and this
rule alone says new / resume / finished / refuse / restart, so every case is one table row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional

from search.experiment.state import State, Status
from search.experiment.storage import StoragePath, as_path
from search.spec.problems import join_loc, show

RAY_TUNER_FILE = "tuner.pkl"
RAY_STATE_GLOB = "experiment_state-*.json"
# Ray Tune's experiment lives in this folder of the experiment directory, below the record:
# Ray's restore downloads everything in its experiment folder to the driver and its sync uploads
# it all back every few seconds, so a lease or a record beside Ray's files would be reverted to
# its restore-time copy again and again (two drivers, lost rungs).
RAY_DIR = "ray"
# What Ray writes at the top of its experiment folder (besides one folder per trial): how an
# experiment of resnet-search before 0.3, which kept it in the experiment directory, is moved.
RAY_TOP_FILES = (RAY_TUNER_FILE, ".validate_storage_marker", RAY_STATE_GLOB,
                 "search_gen_state-*.json", "searcher-state-*.pkl", "basic-variant-state-*.json",
                 "callback-states-*.pkl")
_ABSENT = object()


class Action(str, Enum):
    NEW = "new"  # start a Ray experiment (reusing `parent_run_id` when it is set)
    RESUME = "resume"  # Tuner.restore: unfinished trials continue from their checkpoints
    FINISHED = "finished"  # nothing left to run: report the results
    REFUSE = "refuse"  # the directory holds something this launch must not touch
    RESTART = "restart"  # move the old experiment aside, then start anew
    EXTEND = "extend"  # a larger budget: Tuner.restore, the searcher going on to the new one


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # one sentence a user reads
    changes: tuple[str, ...] = ()  # for REFUSE and EXTEND: "budget.trials: 6 -> 8"
    parent_run_id: str = ""  # for RESUME/FINISHED, and NEW when a parent run can be reused


def ray_directory(directory: StoragePath) -> StoragePath:
    """Ray Tune's experiment folder in the experiment directory `directory`: `ray/`, or the
    directory itself for an experiment of resnet-search before 0.3 (until a launch moves it)."""
    directory = as_path(directory)
    return directory if legacy_layout(directory) else directory / RAY_DIR


def legacy_layout(directory: StoragePath) -> bool:
    """Whether Ray's files lie beside the record, as before resnet-search 0.3."""
    return (as_path(directory) / RAY_TUNER_FILE).is_file()


def ray_saved(directory: StoragePath) -> bool:
    """Whether Ray saved the experiment in `directory` so that `Tuner.restore` can continue it.
    Ray's own `can_restore` looks only for tuner.pkl, which is written before the first trial
    starts; without an experiment_state snapshot beside it there is nothing to restore."""
    ray = ray_directory(directory)
    return (ray / RAY_TUNER_FILE).is_file() and any(ray.glob(RAY_STATE_GLOB))


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    # Lists are leaves: "choices: [a, b] -> [a, c]" reads better than per-index paths.
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _leaves(item, join_loc(path, str(key)), out)
    else:
        out[path] = value


def changed_leaves(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """Every leaf that differs, by dotted path, sorted: (path, old, new), `_ABSENT` for a leaf
    one side lacks."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    _leaves(old, "", before)
    _leaves(new, "", after)
    changes = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path, _ABSENT), after.get(path, _ABSENT)
        # 1 == 1.0 == True in Python; a changed type is a changed spec (it hashes differently).
        if a is _ABSENT or b is _ABSENT or type(a) is not type(b) or a != b:
            changes.append((path, a, b))
    return changes


def _line(path: str, a: Any, b: Any, why: str = "") -> str:
    def shown(value: Any) -> str:
        return "(absent)" if value is _ABSENT else show(value)

    return f"{path or '(spec)'}: {shown(a)} -> {shown(b)}{why}"


def spec_changes(old: dict, new: dict) -> list[str]:
    """Every leaf that differs, by dotted path, sorted: "path: old -> new"."""
    return [_line(*change) for change in changed_leaves(old, new)]


# The budget an experiment may be given more of under its name: a launch with a larger one
# extends it (the searcher goes on from its state), a smaller one is refused like any change.
GROWABLE = ("budget.trials", "budget.max_epochs")
SHRUNK = " (a budget can be raised to extend an experiment, never lowered)"


def budget_growth(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(the growth of GROWABLE budgets, every other change) between two resolved specs, each as
    "path: old -> new" lines; a lowered budget is an other change, saying why (pure)."""
    grown, other = [], []
    for path, a, b in changed_leaves(old, new):
        counts = type(a) is int and type(b) is int
        if path in GROWABLE and counts and b > a:
            grown.append(_line(path, a, b))
        else:
            other.append(_line(path, a, b, SHRUNK if path in GROWABLE and counts else ""))
    return grown, other


def decide(state: Optional[State], saved_spec: Optional[dict], spec: dict, spec_hash: str,
           ray_saved: bool) -> Decision:
    """New / resume / finished / refuse / restart for a launch of `spec` (resolved, with
    `spec_hash`) onto a directory holding `state`, `saved_spec` and, if `ray_saved`, Ray's
    snapshot."""
    if state is None:
        if ray_saved:
            return Decision(Action.REFUSE, (
                "the directory holds a Ray Tune experiment without a resnet-search record "
                "(resnet_search.json), so it cannot be resumed safely; launch under a new name "
                "(--name NEW), or move the directory away to start anew"))
        return Decision(Action.NEW, "no experiment of this name exists yet: starting it")
    if state.status is Status.ABORTED:
        # Fail-fast told its searcher to finish, so Ray would only replay the end.
        why = f" ({state.reason})" if state.reason else ""
        return Decision(Action.RESTART, (
            f"the last launch of '{state.name}' was aborted{why}, so Ray cannot resume it: it is "
            "moved aside and the experiment starts anew"))
    parent = state.parent_run_id
    if state.spec_hash != spec_hash:
        grown, other = budget_growth(saved_spec, spec) if saved_spec is not None else ([], [])
        # No change at all: the record holds this very spec under another hash, as a launch
        # that extended it leaves it when killed between writing the two (record.py): it
        # extends again.
        if saved_spec is not None and not other:
            if not ray_saved:  # nothing was computed: the larger search starts anew
                return Decision(Action.NEW, (
                    f"experiment '{state.name}' stopped before Ray saved anything: starting it "
                    "anew with the larger budget in its MLflow parent run"),
                    changes=tuple(grown), parent_run_id=parent)
            return Decision(Action.EXTEND, (
                f"extending experiment '{state.name}' ({state.status.value}) to the larger "
                "budget: its searcher goes on from its saved state"),
                changes=tuple(grown), parent_run_id=parent)
        return Decision(Action.REFUSE, (
            f"experiment '{state.name}' was run with a different spec (hash {state.spec_hash}, "
            f"now {spec_hash}); only budget.trials and budget.max_epochs may grow under the "
            "same name; launch it under a new name (--name NEW) to start a new experiment; the "
            "old one is kept"), changes=tuple(sorted(grown + other)))
    if state.status is Status.FINISHED:
        return Decision(Action.FINISHED, f"experiment '{state.name}' has finished: every trial "
                                         "has run", parent_run_id=parent)
    if ray_saved:
        return Decision(Action.RESUME, f"resuming experiment '{state.name}' ({state.status.value})"
                                       " from Ray's last snapshot", parent_run_id=parent)
    # The driver died before Ray's first snapshot: nothing was computed, but the MLflow parent
    # run exists already; reuse it rather than leave an empty twin behind.
    return Decision(Action.NEW, (
        f"experiment '{state.name}' stopped before Ray saved anything: starting it anew in its "
        "MLflow parent run"), parent_run_id=parent)
