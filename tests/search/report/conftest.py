"""An experiment record written the way a search leaves it, for reports: Ray's files (a snapshot
`experiment_state-*.json` with each trial's status, `params.json`, `result.json` per trial) and
ours (`resnet_search.json`, `spec.json`, `scheduler.json`). Reports read only these files."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

from search.experiment.record import Experiment
from search.experiment.state import State, Status, write_state
from search.spec.model import parse_spec

NAME = "report-test"
MAX_EPOCHS = 4
SPACE = {"lr": {"float": [0.01, 1.0], "log": True},
         "weight_decay": {"float": [1e-5, 1e-3], "log": True},
         "residual": {"choice": ["add", "scaled"]},
         "residual_scale": {"float": [0.0, 1.0], "when": {"residual": "scaled"}}}


@dataclass
class Planned:
    """One trial as a test wants it recorded."""
    trial_id: str
    values: list  # the objective per epoch (NaN allowed)
    params: dict
    status: str = "TERMINATED"  # Ray's
    stopped: bool = False  # by ASHA (scheduler.json)
    last: dict = field(default_factory=dict)  # merged into the last report ({"outcome": ...})


def lr_params(lr: float, scale: Optional[float] = None) -> dict:
    params = {"lr": lr, "weight_decay": 1e-4, "residual": "add" if scale is None else "scaled"}
    return params if scale is None else {**params, "residual_scale": scale}


def write_record(directory: Path, trials: list[Planned], *, space: Optional[dict] = None,
                 scheduler: Optional[dict] = None, scheduler_state: Optional[dict] = None
                 ) -> Experiment:
    """The record of a search whose trials started in list order, 100 s apart."""
    directory.mkdir(parents=True)
    spec = parse_spec({"name": NAME, "data": {"dataset": "digits"},
                       "budget": {"trials": max(1, len(trials)), "max_epochs": MAX_EPOCHS},
                       "scheduler": scheduler or {"type": "asha", "grace_period": 1,
                                                  "reduction_factor": 2},
                       "space": SPACE if space is None else space}).resolved()
    (directory / "spec.json").write_text(json.dumps(spec))
    write_state(directory, State(name=NAME, spec_hash="h", parent_run_id="", status=Status.FINISHED,
                                 tracking_uri="sqlite:///unused.db", created_at=1.0,
                                 updated_at=2.0))
    stopped = [t.trial_id for t in trials if t.stopped]
    (directory / "scheduler.json").write_text(json.dumps(
        {"type": "asha", "stopped": stopped, **(scheduler_state or {})}))
    entries = []
    ray = directory / "ray"  # Ray's experiment, as a launch lays it out (decide.RAY_DIR)
    ray.mkdir()
    for number, planned in enumerate(trials):
        trial_dir = ray / planned.trial_id
        trial_dir.mkdir()
        (trial_dir / "params.json").write_text(json.dumps(planned.params))
        start = 1_000_000.0 + 100 * number
        reports = [{"epoch": e, "val_acc": v, "val_loss": 1 - v, "timestamp": start + 10 * e,
                    "time_this_iter_s": 10.0, "trial_id": planned.trial_id,
                    "checkpoint_dir_name": f"checkpoint_{e - 1:06d}"}
                   for e, v in enumerate(planned.values, 1)]
        if reports:
            reports[-1].update(planned.last)
        (trial_dir / "result.json").write_text(
            "".join(json.dumps(r, allow_nan=True) + "\n" for r in reports))
        # A running trial resumes from its newest checkpoint, as Ray's snapshot names it.
        newest = f"checkpoint_{len(reports) - 1:06d}".encode()
        entries.append([
            json.dumps({"trial_id": planned.trial_id, "status": planned.status,
                        "config": planned.params, "relative_logdir": planned.trial_id,
                        "experiment_tag": f"{number + 1}_lr={planned.params.get('lr')}"}),
            json.dumps({"checkpoint_manager": {"value": newest.hex()}})])
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    (ray / f"experiment_state-{stamp}.json").write_text(json.dumps({"trial_data": entries}))
    return Experiment.open(directory)


# A search with every kind of end: 3 completed (one through the conditional branch), 3 stopped
# by ASHA at its rungs (1 and 2), one diverged, one failed, one still running.
SEARCH = [
    Planned("t-best", [0.50, 0.70, 0.80, 0.90], lr_params(0.1)),
    Planned("t-stop1", [0.20], lr_params(0.9), stopped=True),
    Planned("t-second", [0.55, 0.65, 0.75, 0.85], lr_params(0.05, scale=0.5)),
    Planned("t-stop2", [0.40, 0.50], lr_params(0.5), stopped=True),
    Planned("t-third", [0.45, 0.60, 0.70, 0.72], lr_params(0.02, scale=0.9)),
    Planned("t-diverged", [0.30, math.nan], lr_params(0.95),
            last={"outcome": "diverged", "reason": "the loss became nan"}),
    Planned("t-failed", [0.25], lr_params(0.7), status="ERROR"),
    Planned("t-stop3", [0.15], lr_params(0.011), stopped=True),
    Planned("t-running", [0.35, 0.55], lr_params(0.03), status="RUNNING"),
]
RUNGS = {"rungs": [[[2.0, {}], [1.0, {}]]]}


@pytest.fixture
def record(tmp_path: Path) -> Callable[..., Experiment]:
    """write_record into a fresh directory of this test (`storage`: another one)."""
    def write(trials: list[Planned] = SEARCH, storage: str = "runs", **kw) -> Experiment:
        kw.setdefault("scheduler_state", RUNGS)
        return write_record(tmp_path / storage / NAME, trials, **kw)

    return write


@pytest.fixture
def planned() -> list[Planned]:
    """SEARCH, the trials `record()` writes by default."""
    return list(SEARCH)


@pytest.fixture
def plan():
    """This module's builders, for tests that write a record of their own trials."""
    from types import SimpleNamespace

    return SimpleNamespace(Planned=Planned, lr_params=lr_params, SPACE=SPACE, RUNGS=RUNGS,
                           MAX_EPOCHS=MAX_EPOCHS)
