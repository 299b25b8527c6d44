"""The store's synchronous calls: the parent run's summary (redone after every resume), the
artifact location of a new SQLite experiment, and launches racing to create one SQLite store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import (INTERNAL_ERROR, PERMISSION_DENIED,
                                          RESOURCE_DOES_NOT_EXIST, UNAUTHENTICATED)
from mlflow.tracking import MlflowClient

from search.tracking.store import (NOTE_TAG, artifact_location, open_parent, probe, refusal,
                                   reopen_parent, sqlite_file, summarise_parent)


def _best(value: float, **params) -> dict:
    return {"trial_id": "t1", "run_id": "r1", "value": value, "params": params,
            "config": {"depth": 20, **params}}


def test_the_summary_is_redone_after_a_resume(store):
    client = store.client
    summarise_parent(store.uri, store.parent, metric="val_acc", state="interrupted",
                     status="KILLED", reason="interrupted",
                     best=_best(0.8, lr=0.1, residual="scaled", residual_scale=0.5))
    run = client.get_run(store.parent)
    assert run.info.status == "KILLED"
    assert run.data.tags["state"] == "interrupted" and run.data.tags["reason"] == "interrupted"
    assert run.data.tags["best.residual_scale"] == "0.5"
    assert run.data.metrics["best_val_acc"] == 0.8

    reopen_parent(store.uri, store.parent)  # the resumed launch
    run = client.get_run(store.parent)
    assert (run.info.status, run.data.tags["state"]) == ("RUNNING", "running")
    assert "reason" not in run.data.tags

    best = _best(0.9, lr=0.2, residual="add")
    best["trial_id"], best["run_id"] = "t2", "r2"
    summarise_parent(store.uri, store.parent, metric="val_acc", state="finished",
                     status="FINISHED", best=best)
    run = client.get_run(store.parent)
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert (tags["state"], tags["best_trial_id"], tags["best_run_id"]) == ("finished", "t2", "r2")
    assert {k: v for k, v in tags.items() if k.startswith("best.")} == {
        "best.lr": "0.2", "best.residual": "add"}  # the earlier best's residual_scale is gone
    assert "reason" not in tags
    assert "t2" in tags[NOTE_TAG] and "0.9" in tags[NOTE_TAG]
    assert run.data.metrics["best_val_acc"] == 0.9  # what the UI shows: the latest
    history = client.get_metric_history(store.parent, "best_val_acc")
    assert len(history) == 2 and history[1].timestamp > history[0].timestamp
    assert [p.step for p in history] == [0, 0]  # no winner's run: no epochs to stand on
    config = client.download_artifacts(store.parent, "best_config.json")
    assert '"residual": "add"' in Path(config).read_text()


def test_the_parents_points_share_the_trials_epoch_axis_and_the_latest_is_shown(store):
    """MLflow's charts draw every run on one x axis: a parent point at step = the Unix time
    (1.8e9) squeezed every trial's curve into x = 0. Read back as MLflow's REST API answers
    (metric history), each parent step is an epoch of the winner; a later summary whose
    winner trained fewer epochs keeps the step and is still the value shown."""
    client = store.client
    experiment = client.get_run(store.parent).info.experiment_id
    trials = {}
    for trial_id, epochs in (("t1", 6), ("t2", 2)):
        run = client.create_run(experiment, tags={"mlflow.parentRunId": store.parent,
                                                  "trial_id": trial_id,
                                                  "epochs_trained": str(epochs)})
        trials[trial_id] = run.info.run_id
    best = _best(0.8, lr=0.1)
    best["run_id"] = trials["t1"]
    summarise_parent(store.uri, store.parent, metric="val_acc", state="finished",
                     status="FINISHED", best=best)
    reopen_parent(store.uri, store.parent)
    best = _best(0.9, lr=0.2)
    best["trial_id"], best["run_id"] = "t2", trials["t2"]
    summarise_parent(store.uri, store.parent, metric="val_acc", state="finished",
                     status="FINISHED", best=best)
    for key in ("best_val_acc", "val_acc"):
        history = client.get_metric_history(store.parent, key)
        assert [(p.step, p.value) for p in history] == [(6, 0.8), (6, 0.9)], history
        assert history[1].timestamp > history[0].timestamp
    assert client.get_run(store.parent).data.metrics["val_acc"] == 0.9


def test_a_summary_without_a_best_trial_only_closes(store):
    summarise_parent(store.uri, store.parent, metric="val_acc", best=None, state="aborted",
                     status="FAILED", reason="5 trials failed in a row")
    run = store.client.get_run(store.parent)
    assert run.info.status == "FAILED"
    assert (run.data.tags["state"], run.data.tags["reason"]) == ("aborted",
                                                                 "5 trials failed in a row")
    assert "best_trial_id" not in run.data.tags and not run.data.metrics


def test_sqlite_file_of_each_uri_form(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path}/m.db") == tmp_path / "m.db"
    assert sqlite_file("sqlite:///m.db") == Path("m.db")  # relative to the working directory
    assert sqlite_file("sqlite:///m.db?timeout=5") == Path("m.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("http://127.0.0.1:5000") is None
    assert artifact_location("http://127.0.0.1:5000") is None


def test_a_new_sqlite_experiment_keeps_artifacts_next_to_its_database(tmp_path, monkeypatch,
                                                                     fresh_mlflow):
    elsewhere = tmp_path / "launched-from"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = fresh_mlflow(tmp_path / "store" / "m.db")  # a store with no experiment of ours yet
    parent = open_parent(uri, "exp", "exp", tags={}, params={"trials": 3},
                         artifacts={"spec.json": "{}"})
    assert (tmp_path / "store" / "mlruns" / "").is_dir()
    assert list((tmp_path / "store" / "mlruns").rglob("spec.json"))
    assert not (elsewhere / "mlruns").exists()
    run = MlflowClient(uri).get_run(parent)
    assert run.data.params["trials"] == "3" and run.data.tags["state"] == "running"
    # A second launch of the experiment reuses it.
    again = open_parent(uri, "exp", "exp", tags={}, params={}, artifacts={})
    assert MlflowClient(uri).get_run(again).info.experiment_id == run.info.experiment_id


# A launch in a fresh interpreter: import, say ready, wait for the start signal, probe.
PROBE = """
import sys, time
from pathlib import Path
from search.tracking.store import probe
here, uri = Path(sys.argv[1]), sys.argv[2]
(here / f"ready-{sys.argv[3]}").touch()
while not (here / "go").exists():
    time.sleep(0.005)
print(repr(probe(uri, timeout_s=120)))
"""


def test_launches_creating_one_sqlite_store_at_once_all_succeed(tmp_path):
    """Without the lock file, MLflow's schema migration run by 4 processes at once fails in
    most of them (duplicate column, alembic version row mismatch)."""
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    launches = [subprocess.Popen([sys.executable, "-c", PROBE, str(tmp_path), uri, str(i)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(4)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()  # the start barrier: all four probe at the same instant
    outputs = [launch.communicate(timeout=180) for launch in launches]
    assert [launch.returncode for launch in launches] == [0] * 4, outputs
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == ["None"] * 4, outputs
    assert probe(uri) is None


# --- a server refusing the client's credentials (tests/e2e/test_mlflow_server.py runs a real one)

@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # MLflow's client also reads ~/.mlflow/credentials
    return monkeypatch


def _answer(status: int) -> MlflowException:
    """What MLflow's REST client raises for a non-JSON error response (basic auth's 401/403)."""
    code = {401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: RESOURCE_DOES_NOT_EXIST,
            500: INTERNAL_ERROR}[status]
    return MlflowException(f"API request failed with error code {status} != 200", error_code=code)


def test_a_refusal_names_the_user_and_where_the_credentials_came_from(no_credentials, tmp_path):
    fix = ("set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the launching "
           "environment (never in the spec)")
    assert refusal(_answer(401)) == ("the server asks for credentials (HTTP 401) and none were "
                                     f"given: {fix}")
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = bob\nmlflow_tracking_password = s3cret-pw\n")
    assert refusal(_answer(401)) == ("the server refused user 'bob' (from ~/.mlflow/credentials): "
                                     f"HTTP 401, wrong password or unknown user; {fix}")
    no_credentials.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    no_credentials.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-hunter2")
    said = refusal(_answer(401))
    assert said.startswith("the server refused user 'ann' (from MLFLOW_TRACKING_USERNAME)")
    assert "hunter2" not in said and "s3cret" not in said
    assert refusal(_answer(403)) == ("the server refused user 'ann' (from "
                                     "MLFLOW_TRACKING_USERNAME): HTTP 403, no permission; ask "
                                     "the server's admin")
    # A JSON error body is raised as a RestException carrying the server's error code.
    rest = RestException({"error_code": "UNAUTHENTICATED", "message": "bad credentials"})
    assert refusal(rest).startswith("the server refused user 'ann'")


def test_a_token_is_named_and_other_errors_are_not_refusals(no_credentials):
    no_credentials.setenv("MLFLOW_TRACKING_TOKEN", "tok-123456")
    said = refusal(_answer(401))
    assert said.startswith("the server refused the token in MLFLOW_TRACKING_TOKEN: HTTP 401")
    assert "tok-123456" not in said
    assert refusal(_answer(404)) is None and refusal(_answer(500)) is None
    assert refusal(MlflowException("the store is read-only")) is None


def test_the_pareto_tag_moves_with_the_front_and_one_objective_leaves_it_alone(store):
    """Several objectives: `pareto=true` on the runs of the trials on the front after each
    summary (a resume can move the front), on no other run."""
    client = store.client
    experiment_id = client.get_run(store.parent).info.experiment_id
    runs = {t: client.create_run(experiment_id, tags={"mlflow.parentRunId": store.parent,
                                                      "trial_id": t}).info.run_id
            for t in ("a", "b", "c")}

    def tagged() -> set[str]:
        return {t for t, run_id in runs.items()
                if client.get_run(run_id).data.tags.get("pareto") == "true"}

    summarise_parent(store.uri, store.parent, metric="val_acc", state="interrupted",
                     status="KILLED", best=None, front=["a", "b"])
    assert tagged() == {"a", "b"}
    summarise_parent(store.uri, store.parent, metric="val_acc", state="finished",
                     status="FINISHED", best=None, front=["b", "c"])  # c pushed a off the front
    assert tagged() == {"b", "c"}
    summarise_parent(store.uri, store.parent, metric="val_acc", state="finished",
                     status="FINISHED", best=None)  # one objective: no front, tags untouched
    assert tagged() == {"b", "c"}
