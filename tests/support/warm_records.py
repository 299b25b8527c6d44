"""Experiment records as a search leaves them (our record files beside the trial directories
Ray writes), written without Ray: the one writer of records for tests. The earlier experiments
of the warm start tests and the searches the export tests export from (`record`), and the
searches the report tests report on (tests/search/report/conftest.py, through `write_search`)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from search.experiment.location import locate
from search.experiment.state import State, Status, write_json_atomic, write_state
from search.spec.model import parse_spec


@dataclass
class Planned:
    """One trial as a test wants it recorded."""
    trial_id: str
    values: list  # the objective (val_acc) per epoch (NaN allowed)
    params: dict
    status: str = "TERMINATED"  # Ray's
    stopped: bool = False  # by the scheduler (scheduler.json)
    last: dict = field(default_factory=dict)  # merged into the last report ({"outcome": ...})


def write_search(directory: Path, resolved: dict, trials: list[Planned], state: State,
                 scheduler_state: Optional[dict] = None) -> Path:
    """The record of a search of the resolved spec `resolved` whose `trials` started in list
    order, 100 s apart: ours (resnet_search.json from `state`, spec.json, scheduler.json with the
    trials the scheduler stopped) and Ray's (a folder per trial with params.json, result.json and
    its newest checkpoint; the experiment snapshot with each trial's status). A curve ending in
    NaN short of max_epochs diverged. Returns `directory`."""
    directory.mkdir(parents=True)
    write_state(directory, state)
    write_json_atomic(directory / "spec.json", resolved)
    (directory / "scheduler.json").write_text(json.dumps(
        {"type": resolved["scheduler"]["type"],
         "stopped": [t.trial_id for t in trials if t.stopped], **(scheduler_state or {})}))
    max_epochs = resolved["budget"]["max_epochs"]
    ray = directory / "ray"  # Ray's experiment, as a launch lays it out (decide.RAY_DIR)
    ray.mkdir()
    entries = []
    for number, planned in enumerate(trials):
        folder = ray / planned.trial_id
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps(planned.params))
        start = 1_000_000.0 + 100 * number
        reports = [{"epoch": e, "val_acc": v, "val_loss": 1 - v, "train_acc": v,
                    "timestamp": start + 10 * e, "time_this_iter_s": 10.0,
                    "trial_id": planned.trial_id, "checkpoint_dir_name": f"checkpoint_{e - 1:06d}"}
                   for e, v in enumerate(planned.values, 1)]
        if reports and len(reports) < max_epochs and math.isnan(planned.values[-1]):
            reports[-1]["outcome"] = "diverged"
        if reports:
            reports[-1].update(planned.last)
        (folder / "result.json").write_text(
            "".join(json.dumps(r, allow_nan=True) + "\n" for r in reports))
        run_metadata = {}
        if reports:  # its newest checkpoint, as Ray's snapshot names it (a resume starts there)
            newest = reports[-1]["checkpoint_dir_name"]
            (folder / newest).mkdir()
            run_metadata = {"checkpoint_manager": {"value": newest.encode().hex()}}
        entries.append([
            json.dumps({"trial_id": planned.trial_id, "status": planned.status,
                        "config": planned.params, "relative_logdir": planned.trial_id,
                        "experiment_tag": f"{number + 1}_lr={planned.params.get('lr')}"}),
            json.dumps(run_metadata)])
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    (ray / f"experiment_state-{stamp}.json").write_text(json.dumps({"trial_data": entries}))
    return directory


def search_spec(name: str, **changes) -> dict:
    return {"name": name, "data": {"dataset": "digits"},
            "budget": {"trials": 3, "max_epochs": 2},
            "space": {"lr": {"float": [0.01, 0.5], "log": True},
                      "schedule": {"choice": ["cosine", "step"]}},
            "tracking": {"mlflow_uri": "sqlite:///mlflow.db"}, "storage_path": "runs",
            **changes}


TRIALS = {"t1": ({"lr": 0.05, "schedule": "cosine"}, [0.4, 0.7]),
          "t2": ({"lr": 0.3, "schedule": "step"}, [0.5, 0.9]),
          "t3": ({"lr": 0.02, "schedule": "step"}, [0.2])}


def record(base: Path, spec: dict, trials: Optional[dict] = None,
           status: Status = Status.FINISHED, parent_run_id: str = "p" * 32) -> Path:
    """Write `spec` as `base/spec.yaml` and the record of its search (launched from `base`), its
    `trials` (trial id -> (params, per-epoch val_acc[, what its last report adds]); default
    TRIALS) as Ray lays them out, and return the experiment directory."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    parsed = parse_spec(spec, base_dir=base)
    location = locate(parsed.name, parsed.storage_path, parsed.tracking.mlflow_uri,
                      parsed.data.root, base)
    now = time.time()
    state = State(name=parsed.name, spec_hash=parsed.spec_hash(), parent_run_id=parent_run_id,
                  status=status, tracking_uri=location.tracking_uri, created_at=now,
                  updated_at=now)
    planned = [Planned(trial_id, curve, params, last=dict(*rest))
               for trial_id, (params, curve, *rest) in
               (TRIALS if trials is None else trials).items()]
    return write_search(location.directory, parsed.resolved(), planned, state)
