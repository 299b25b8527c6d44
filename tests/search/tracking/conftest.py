"""A real MLflow SQLite store with an open parent run, mirrors on it, and the stand-ins for Ray
trials and their results of tests/support/trials.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from search.engine.ledger import Ledger
from trials import FakeTrial, epoch
from tune_events import Fed
from search.tracking.points import METRICS, mlflow_key, step_of


@pytest.fixture
def make_trial():
    """`make_trial(trial_id, lr=0.1, **sampled)`: a FakeTrial that sampled those."""
    return lambda trial_id, lr=0.1, **sampled: FakeTrial(trial_id, {"lr": lr, **sampled})


@pytest.fixture
def make_epoch():
    return epoch


@dataclass
class Store:
    db: Path
    uri: str
    parent: str
    client: MlflowClient

    def children(self) -> dict[str, list]:
        """trial id -> its child runs of the parent run."""
        experiment = self.client.get_run(self.parent).info.experiment_id
        found: dict[str, list] = {}
        for run in self.client.search_runs([experiment],
                                           f"tags.`mlflow.parentRunId` = '{self.parent}'"):
            found.setdefault(run.data.tags["trial_id"], []).append(run)
        return found

    def steps(self, run_id: str, key: str) -> list[int]:
        return sorted(p.step for p in self.client.get_metric_history(run_id, key))

    def assert_complete(self, results: dict[str, list[dict]]) -> None:
        """Every trial has one run whose history holds every finite epoch of every metric of
        its results exactly once."""
        children = self.children()
        assert sorted(children) == sorted(results)
        for trial_id, rows in results.items():
            assert len(children[trial_id]) == 1, children[trial_id]
            run_id = children[trial_id][0].info.run_id
            for key in METRICS:
                expected = sorted(step_of(r) for r in rows if isinstance(r.get(key), float)
                                  and math.isfinite(r[key]))
                assert self.steps(run_id, mlflow_key(key)) == expected, (trial_id, key)


@pytest.fixture
def store(tmp_path, fresh_mlflow) -> Store:
    """A private store (a copy of the session's migrated template) with the parent run open."""
    from search.tracking.store import open_parent

    db = tmp_path / "m.db"
    uri = fresh_mlflow(db)
    parent = open_parent(uri, "exp", "exp", tags={}, params={}, artifacts={})
    return Store(db, uri, parent, MlflowClient(uri))


@pytest.fixture
def make_mirror(store):
    from search.spec.model import load_spec
    from search.tracking.mirror import MlflowMirror

    job = load_spec("spaces/digits.yaml").job()  # max_epochs 6

    def make(deadline_s: float = 120.0, stopped=(), conditional=("residual_scale",),
             parent=None) -> Fed:
        """A mirror as a launch runs it: fed after the launch's ledger; the scheduler stopped
        the trials `stopped`."""
        ledger = Ledger(job.max_epochs, stop_tag="asha")
        for trial_id in stopped:
            ledger.stop(trial_id)
        return Fed(ledger, MlflowMirror(store.uri, parent or store.parent, job, ledger,
                                        deadline_s=deadline_s, conditional=conditional))

    return make

