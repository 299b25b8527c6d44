"""The MLflow mirror's guards: nothing it does may hold up or fail a search."""

import threading
import time

import pytest

from search.engine.trial_errors import error_reason
from search.experiment.outcome import Outcome
from search.tracking.mirror import MLFLOW_STATUS
from search.tracking.store import probe, within


def test_within_returns_none_on_success():
    assert within(5, lambda: None) is None


def test_within_reports_an_error_instead_of_raising():
    def boom():
        raise ConnectionError("refused")

    assert within(5, boom) == "ConnectionError: refused"


def test_within_gives_up_at_its_deadline():
    release = threading.Event()
    start = time.monotonic()
    assert within(0.3, release.wait) == "no answer within 0 s"
    assert time.monotonic() - start < 2
    release.set()


def test_probe_of_a_dead_server_answers_in_seconds(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    start = time.monotonic()
    assert probe("http://127.0.0.1:9", timeout_s=10) is not None
    assert time.monotonic() - start < 12


def test_sqlite_store_probes_clean(tmp_path):
    assert probe(f"sqlite:///{tmp_path / 'm.db'}") is None


def test_error_reason_without_an_error_file_points_to_ray():
    class Trial:
        pickled_error_file = None

    assert "error.txt" in error_reason(Trial())


# --- a resumed mirror against a real MLflow sqlite store ---------------------------------------

class _Trial:
    """What the mirror reads of a Ray Trial on start/complete (Ray builds real ones only inside a
    running Tuner; the e2e fault tests drive those)."""

    def __init__(self, trial_id: str, lr: float) -> None:
        self.trial_id, self.config, self.last_result = trial_id, {"lr": lr}, {}
        self.status = "RUNNING"

    def __str__(self) -> str:
        return f"run_trial_{self.trial_id}"


def _mirror(uri: str, parent: str):
    from search.spec.model import load_spec
    from search.tracking.mirror import MlflowMirror

    job = load_spec("spaces/digits.yaml").job()
    return MlflowMirror(uri, parent, job, scheduler_stops=lambda trial_id: False)


def test_a_resumed_mirror_adopts_unsnapshotted_runs_and_closes_orphans(tmp_path):
    """Driver 1 starts trials a and b and dies before Tune's snapshot records b's run; the
    snapshot never reaches trial c at all. Driver 2 restores a and b: b must reuse its run (not
    get a second one), and c's run must end KILLED with the reason, not stay RUNNING."""
    from mlflow.tracking import MlflowClient

    from search.tracking.store import open_parent

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    parent = open_parent(uri, "exp", "exp", tags={}, params={}, artifacts={})
    first = _mirror(uri, parent)
    for trial in (_Trial("a", 0.1), _Trial("b", 0.2), _Trial("c", 0.3)):
        first.on_trial_start(0, [], trial)
    assert first.flush(30)
    snapshot = first.get_state()
    snapshot["runs"].pop("b")  # b's run id had not come back from MLflow at snapshot time

    second = _mirror(uri, parent)
    second.set_state(snapshot)
    restored = [_Trial("a", 0.1), _Trial("b", 0.2), _Trial("d", 0.4)]  # d: suggested anew
    for trial in restored:
        second.on_trial_start(0, restored, trial)
        second.on_trial_result(0, restored, trial, {"epoch": 1, "val_acc": 0.5})
    second.on_experiment_end(restored)

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(parent).info.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent}'")
    by_trial = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["trial_id"], []).append(run)
    assert sorted(by_trial) == ["a", "b", "c", "d"]
    assert all(len(found) == 1 for found in by_trial.values()), by_trial
    assert by_trial["b"][0].info.run_id == first.runs["b"] == second.runs["b"]
    assert by_trial["b"][0].data.metrics["val_acc"] == 0.5
    orphan = by_trial["c"][0]
    assert orphan.info.status == "KILLED"
    assert orphan.data.tags["outcome"] == "killed"
    assert "driver died before Ray saved trial c" in orphan.data.tags["reason"]
    for trial_id in "abd":  # ended with the search after 1 epoch: killed, but not orphans
        run = by_trial[trial_id][0]
        assert (run.info.status, run.data.tags["outcome"]) == ("KILLED", "killed")
        assert "reason" not in run.data.tags and run.data.tags["epochs"] == "1"


@pytest.mark.parametrize("verdict, status", [
    (Outcome.COMPLETED, "FINISHED"), (Outcome.STOPPED, "FINISHED"), (Outcome.KILLED, "KILLED"),
    (Outcome.DIVERGED, "FAILED"), (Outcome.OOM, "FAILED"), (Outcome.INVALID, "FAILED"),
    (Outcome.FAILED, "FAILED"),
])
def test_every_outcome_maps_to_an_mlflow_status(verdict, status):
    assert MLFLOW_STATUS[verdict] == status
