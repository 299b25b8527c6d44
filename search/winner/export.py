"""The winner of a search as a spec of its own: one trial of its full resolved config.

    exported = export(saved_spec, state, results, directory=..., data_root=..., when=...)
    Path("best.yaml").write_text(exported.text)

Pure: the record's plain data in, the spec (a dict `validate` accepts) and its text out. The
spec is the search's `data`, `objective`, `trial` and `tracking`, with `fixed` = every field of
the winner's config (sampled or not, defaults included: a later change of a default must not
change what the file trains) and no `space`; `budget` keeps the search's `max_epochs`, which is
what the winner was trained for. Paths are written absolute, so the file means the same
wherever it is written or moved. Where it came from goes in its comment header (`header`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import yaml

from search.experiment.results import Results, TrialRecord
from search.experiment.state import State
from search.spec import objective
from search.spec.redact import redact
from search.winner import pick
from search.winner.header import header

if TYPE_CHECKING:
    from search.experiment.location import Location
    from search.experiment.record import Experiment

SUFFIX = "-best"
NAME_LIMIT = 100  # an experiment name's limit (search.spec.model.experiment_name_problem)
SET_BY_BUDGET = "epochs"  # a spec's `fixed` may not hold it: budget.max_epochs sets it


class ExportRefused(Exception):
    """The experiment has nothing that can be exported; the message says why and what to do."""


@dataclass(frozen=True)
class Exported:
    spec: dict  # the spec, as `load_spec` reads the file back
    provenance: dict  # what the header records
    text: str  # the file: header, then the spec as YAML


def best_name(experiment: str) -> str:
    """`<experiment>-best`, cut to fit an experiment name's limit."""
    return experiment[:NAME_LIMIT - len(SUFFIX)] + SUFFIX


def absolute_root(root: str, storage_path: str, storage: str) -> Optional[str]:
    """`data.root` made independent of the spec file it was written in, or None when the
    experiment's directory cannot tell. A relative root is relative to that spec file's
    directory (`base`), and all an experiment directory records is `storage = base /
    storage_path`: storage_path's `..` steps hide that many trailing names of `base`, so a root
    that climbs at least as far is still known. An absolute or `~` root is kept as written."""
    if root.startswith("~") or os.path.isabs(root):
        return root
    if "://" in storage_path or storage_path.startswith("~") or os.path.isabs(storage_path):
        return None  # nothing ties the storage to the spec file's directory
    hidden, names = _climb(storage_path)
    stored = PurePosixPath(storage)
    if names and stored.parts[-len(names):] != tuple(names):
        return None
    known = PurePosixPath(*stored.parts[:len(stored.parts) - len(names)])  # base, `hidden` up
    climbs, rest = _climb(root)
    if climbs < hidden:
        return None
    return os.path.normpath(str(known.joinpath(*[".."] * (climbs - hidden), *rest)))


def _climb(path: str) -> tuple[int, list[str]]:
    """A relative path, normalised, as (its leading `..` count, the names after them)."""
    parts = [p for p in PurePosixPath(os.path.normpath(path)).parts if p != "."]
    ups = next((i for i, p in enumerate(parts) if p != ".."), len(parts))
    return ups, parts[ups:]


def winner_of(results: Results, experiment: str, front: Sequence[str] = (),
              rule: Optional[pick.Rule] = None) -> TrialRecord:
    """The best trial, or ExportRefused: none has a finite objective, or its config cannot be
    rebuilt. With several objectives, the trial of the Pareto front `front` that `rule` picks
    (search.winner.pick; default: the front's knee). With one, `rule` picks among the trials
    of the whole budget that hold every constraint."""
    if results.objectives or rule is not None:
        winner = _picked(results, experiment, front, rule)
    else:
        winner = results.best
    if winner is None:
        ended = len([t for t in results.trials if t.results])
        raise ExportRefused(
            f"experiment '{experiment}' has no winner: none of its {len(results.trials)} trials "
            f"({ended} with results) reached a finite {results.metric}; launch it (again) "
            "until one does")
    if winner.config_error or not winner.config:
        raise ExportRefused(
            f"the winner of '{experiment}', trial {winner.trial_id}, has no config this version "
            f"can rebuild: {winner.config_error or 'its params are missing'}")
    return winner


def _picked(results: Results, experiment: str, front: Sequence[str],
            rule: Optional[pick.Rule]) -> TrialRecord:
    by_id = {t.trial_id: t for t in results.trials}
    among = list(front) if results.objectives else list(results.candidates())
    candidates = {t: by_id[t].results[-1] for t in among if t in by_id and by_id[t].results}
    chosen = (pick.by_rule(candidates, rule) if rule is not None
              else pick.knee(candidates, results.all_objectives))
    if chosen is None:
        what = "on the Pareto front" if results.objectives else "of the whole budget"
        why = (f"none of the {len(candidates)} trials {what} meets '{rule}'" if candidates
               else f"no trial of '{experiment}' has run its whole budget holding every "
                    "constraint yet")
        raise ExportRefused(f"nothing to pick: {why}; launch it further or state another "
                            "--pick")
    return by_id[chosen]


def winner_spec(saved: dict, winner: TrialRecord, *, data_root: str, storage: str,
                tracking_uri: str) -> dict:
    """The exported spec: one trial of the winner's config on the search's data, logged to the
    search's MLflow experiment, stored next to the search."""
    tracking = dict(saved.get("tracking") or {})
    return {
        "name": best_name(saved["name"]),
        "data": {**saved["data"], "root": data_root},
        "objective": copy.deepcopy(saved["objective"]),  # a mapping, or a list of them
        "budget": {"trials": 1, "max_epochs": saved["budget"]["max_epochs"]},
        "trial": dict(saved.get("trial") or {}),
        # One trial: nothing to compare it with, nothing to stop early.
        "scheduler": {"type": "fifo"},
        "fixed": {k: v for k, v in winner.config.items() if k != SET_BY_BUDGET},
        # A file meant to travel: the URI's secret stays masked (retrain gets it back from
        # MLFLOW_TRACKING_URI).
        "tracking": {"mlflow_uri": redact(tracking_uri),
                     "experiment": tracking.get("experiment") or saved["name"]},
        "storage_path": storage,
    }


def provenance_of(saved: dict, state: Optional[State], results: Results, winner: TrialRecord,
                  *, directory: str, when: str, version: str,
                  rule: Optional[pick.Rule] = None) -> dict:
    """Everything needed to trace the file back: the experiment, the trial, its score and
    checkpoint, the spec's hash, the MLflow runs, when and by which version; with several
    objectives every objective's value at its last epoch and how it was picked."""
    several = {"objectives": results.values(winner),
               "picked_by": str(rule) if rule is not None else pick.KNEE} \
        if results.objectives else ({"picked_by": str(rule)} if rule is not None else {})
    return {**several,
        "experiment": saved["name"],
        "directory": directory,
        "status": state.status.value if state else "unknown",
        "trial_id": winner.trial_id,
        "objective": {"metric": results.metric, "mode": results.mode,
                      "value": winner.best if objective.finite(winner.best) else None},
        "epochs": winner.epochs,
        "outcome": winner.outcome.value,
        "params": dict(winner.params),
        "checkpoint": None if winner.checkpoint is None else str(winner.checkpoint),
        "spec_hash": state.spec_hash if state else None,
        "mlflow": {"experiment": (saved.get("tracking") or {}).get("experiment")
                   or saved["name"],
                   "parent_run_id": state.parent_run_id if state else None},
        "exported_at": when,
        "resnet_search": version,
    }


def export(saved: dict, state: Optional[State], results: Results, *, directory: str,
           data_root: str, storage: str, tracking_uri: str, when: str, version: str,
           file_name: str = "best.yaml", front: Sequence[str] = (),
           rule: Optional[pick.Rule] = None) -> Exported:
    """The winner of the experiment recorded as `saved` (its spec.json), `state` and
    `results`, as the text of a spec file called `file_name`. ExportRefused when there is no
    winner. `front`, `rule`: see `winner_of`."""
    winner = winner_of(results, saved["name"], front, rule)
    spec = winner_spec(saved, winner, data_root=data_root, storage=storage,
                       tracking_uri=tracking_uri)
    provenance = provenance_of(saved, state, results, winner, directory=directory, when=when,
                               version=version, rule=rule)
    shown = f"{results.metric} {winner.best:.4f}" if objective.finite(winner.best) else ""
    if results.objectives:
        shown = ", ".join(f"{m} {v:.4g}" if v is not None else f"{m} -"
                          for m, v in results.values(winner).items())
        shown += f"; picked by {provenance['picked_by']}"
    intro = [f"The winner of search '{saved['name']}': trial {winner.trial_id} ({shown} after "
             f"{winner.epochs} epochs), as a one-trial spec of its full config.",
             f"Check it:  resnet-search validate {file_name}",
             f"Keep it:   resnet-search retrain {file_name}   (train+validation, then one "
             "test)"]
    body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    return Exported(spec, provenance, header(intro, provenance) + "\n" + body)


# ---- reading the record (the one impure part) ----

def data_root_for(saved: dict, location: Location) -> str:
    """The experiment's `data.root`, independent of any spec file: from the located spec when
    the experiment was named by its spec file, else from what its directory tells."""
    root = str(saved["data"]["root"])
    if root.startswith("~") or os.path.isabs(root):
        return root
    if location.data_root:  # located from the spec file: its directory is known
        return location.data_root
    found = absolute_root(root, str(saved.get("storage_path", "")), str(location.storage))
    if found is None:
        raise ExportRefused(
            f"data.root is {root!r}, relative to the directory of the spec file that launched "
            f"'{saved['name']}', which its experiment directory does not tell; run export-best "
            "on that spec file instead")
    return found


def export_experiment(experiment: Experiment, *, when: str, version: str,
                      file_name: str = "best.yaml",
                      front: Callable[[Results], list[str]] = lambda results: [],
                      rule: Optional[pick.Rule] = None) -> Exported:
    """`export` of an experiment record (search.experiment.record.Experiment); `front` gives
    the trials on a search's Pareto front (search.engine.pareto.on_front). Raises
    NoExperiment and DamagedRecord as the record does, ExportRefused as `export`."""
    from search.experiment.record import NoExperiment

    results = experiment.recorded_results()  # NoExperiment without state or spec
    saved, state = experiment.saved_spec(), experiment.state()
    if saved is None or state is None:  # removed since: as recorded_results says
        raise NoExperiment(f"{experiment.directory} holds no experiment record")
    location = experiment.location
    return export(saved, state, results, directory=str(experiment.directory),
                  data_root=data_root_for(saved, location), storage=str(location.storage),
                  tracking_uri=state.tracking_uri, when=when, version=version,
                  file_name=file_name, front=front(results), rule=rule)
