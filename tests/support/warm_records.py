"""Experiment records as a finished search leaves them (our record files beside the trial
directories Ray writes), written without Ray: the earlier experiments of the warm start tests."""

from __future__ import annotations

import json
import time
from pathlib import Path

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


def record(base: Path, spec: dict) -> Path:
    """`base/spec.yaml` and the record of its finished search; the experiment directory."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "spec.yaml").write_text(yaml.safe_dump(spec))
    parsed = parse_spec(spec, base_dir=base)
    location = locate(parsed.name, parsed.storage_path, parsed.tracking.mlflow_uri,
                      parsed.data.root, base)
    directory = location.directory
    directory.mkdir(parents=True)
    now = time.time()
    write_state(directory, State(name=parsed.name, spec_hash=parsed.spec_hash(),
                                 parent_run_id="p" * 32, status=Status.FINISHED,
                                 tracking_uri=location.tracking_uri, created_at=now,
                                 updated_at=now))
    write_json_atomic(directory / "spec.json", parsed.resolved())
    for trial_id, (params, curve) in TRIALS.items():
        folder = directory / "ray" / trial_id
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps(params))
        (folder / "result.json").write_text("".join(
            json.dumps({"epoch": e, "val_acc": v, "val_loss": 1 - v}) + "\n"
            for e, v in enumerate(curve, 1)))
    return directory
