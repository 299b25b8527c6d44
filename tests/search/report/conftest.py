"""An experiment record written the way a search leaves it, for reports (by the one record writer,
tests/support/warm_records.py): Ray's files (a snapshot `experiment_state-*.json` with each
trial's status, `params.json`, `result.json` per trial) and ours (`resnet_search.json`,
`spec.json`, `scheduler.json`). Reports read only these files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional

import pytest
from warm_records import Planned, write_search

from search.experiment.record import Experiment
from search.experiment.state import State, Status
from search.spec.model import parse_spec

NAME = "report-test"
MAX_EPOCHS = 4
SPACE = {"lr": {"float": [0.01, 1.0], "log": True},
         "weight_decay": {"float": [1e-5, 1e-3], "log": True},
         "residual": {"choice": ["add", "scaled"]},
         "residual_scale": {"float": [0.0, 1.0], "when": {"residual": "scaled"}}}


def lr_params(lr: float, scale: Optional[float] = None) -> dict:
    params = {"lr": lr, "weight_decay": 1e-4, "residual": "add" if scale is None else "scaled"}
    return params if scale is None else {**params, "residual_scale": scale}


def write_record(directory: Path, trials: list[Planned], *, space: Optional[dict] = None,
                 scheduler: Optional[dict] = None, scheduler_state: Optional[dict] = None,
                 **sections: object) -> Experiment:
    """The record of a search whose trials started in list order, 100 s apart; `sections`: more
    of its spec (objective, constraints)."""
    spec = parse_spec({"name": NAME, "data": {"dataset": "digits"}, **sections,
                       "budget": {"trials": max(1, len(trials)), "max_epochs": MAX_EPOCHS},
                       "scheduler": scheduler or {"type": "asha", "grace_period": 1,
                                                  "reduction_factor": 2},
                       "space": SPACE if space is None else space}).resolved()
    state = State(name=NAME, spec_hash="h", parent_run_id="", status=Status.FINISHED,
                  tracking_uri="sqlite:///unused.db", created_at=1.0, updated_at=2.0)
    return Experiment.open(write_search(directory, spec, trials, state, scheduler_state))


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
