"""Experiment records as a search leaves them (our record files beside the trial directories
Ray writes), written without Ray: the earlier experiments of the warm start tests, and the
searches the export tests export from."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import yaml

from search.experiment.location import locate
from search.experiment.state import State, Status, write_json_atomic, write_state
from search.spec.model import parse_spec


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
    `trials` (trial id -> (params, per-epoch val_acc); default TRIALS) as Ray lays them out, and
    return the experiment directory. A curve ending in NaN short of max_epochs diverged."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    parsed = parse_spec(spec, base_dir=base)
    location = locate(parsed.name, parsed.storage_path, parsed.tracking.mlflow_uri,
                      parsed.data.root, base)
    directory = location.directory
    directory.mkdir(parents=True)
    now = time.time()
    write_state(directory, State(name=parsed.name, spec_hash=parsed.spec_hash(),
                                 parent_run_id=parent_run_id, status=status,
                                 tracking_uri=location.tracking_uri,
                                 created_at=now, updated_at=now))
    write_json_atomic(directory / "spec.json", parsed.resolved())
    max_epochs = parsed.budget.max_epochs
    for trial_id, (params, curve) in (TRIALS if trials is None else trials).items():
        folder = directory / "ray" / trial_id  # as a launch lays it out (decide.RAY_DIR)
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps(params))
        lines = [{"epoch": epoch, "val_acc": value, "val_loss": 1 - value, "train_acc": value}
                 for epoch, value in enumerate(curve, start=1)]
        if len(curve) < max_epochs and curve and curve[-1] != curve[-1]:
            lines[-1]["outcome"] = "diverged"
        (folder / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
        (folder / f"checkpoint_{len(curve) - 1:06d}").mkdir()
    return directory
