"""`resnet-search rm`: an experiment's directory (or S3 prefix, on moto's real S3 server) goes
whole: record, Ray's trial directories and checkpoints, log; with --mlflow its parent run and
trial runs are deleted from a real MLflow store and other runs stay. A running search (a live
lease) is refused, naming its driver, and nothing is asked or removed; without --yes it asks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from search.cli import app
from search.experiment.location import locate
from search.experiment.record import Experiment
from search.experiment.state import State, Status
from search.run.driverlog import LOG_FILE
from warm_records import record, search_spec


def rm(*args: str, answer: str = ""):
    return CliRunner().invoke(app, ["rm", *args], input=answer)


def finished(tmp_path: Path, **kw) -> Path:
    directory = record(tmp_path, search_spec("gone"), **kw)
    (directory / LOG_FILE).write_text("=== launch ===\n")
    assert (directory / "ray" / "t1" / "checkpoint_000001").is_dir()
    return directory


def test_the_directory_goes_whole(tmp_path):
    directory = finished(tmp_path)
    other = record(tmp_path / "other", search_spec("kept", storage_path=str(directory.parent)))
    done = rm(str(directory), "--yes")
    assert done.exit_code == 0, done.output
    assert f"removed experiment 'gone' ({directory})" in done.output
    assert not directory.exists()
    assert sorted(p.name for p in directory.parent.iterdir()) == ["kept"]  # its neighbour stays
    assert (other / "resnet_search.json").is_file()


def test_it_asks_first(tmp_path):
    directory = finished(tmp_path)
    kept = rm(str(tmp_path / "spec.yaml"), answer="n\n")  # named by its spec file
    assert kept.exit_code == 1, kept.output
    assert f"remove experiment 'gone' ({directory})" in kept.output
    assert "experiment 'gone' is kept" in kept.output and (directory / LOG_FILE).is_file()
    assert rm(str(directory)).exit_code == 1 and directory.is_dir()  # no answer is no
    done = rm(str(directory), answer="y\n")
    assert done.exit_code == 0, done.output
    assert not directory.exists()


def test_a_running_search_is_refused(tmp_path):
    directory = finished(tmp_path)
    driver = Experiment.open(directory)
    with driver.lease():  # a live driver: this process, on this host
        done = rm(str(directory), "--yes", "--mlflow")
        assert done.exit_code == 1
        assert "running: experiment 'gone' is running (pid " in done.output
        assert "stop it first (resnet-search stop" in done.output
        assert (directory / "ray" / "t1" / "params.json").is_file()
    assert rm(str(directory), "--yes").exit_code == 0  # ended: removable
    assert not directory.exists()


def test_mlflow_runs_go_with_it(tmp_path):
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("gone")
    parent = client.create_run(experiment_id, run_name="gone").info.run_id
    trials = [client.create_run(experiment_id, tags={"mlflow.parentRunId": parent}).info.run_id
              for _ in range(3)]
    other = client.create_run(experiment_id, run_name="another search").info.run_id
    directory = finished(tmp_path, parent_run_id=parent)
    state = json.loads((directory / "resnet_search.json").read_text())
    assert state["tracking_uri"] == uri  # the record's store is this one

    done = rm(str(directory), "--yes", "--mlflow")
    assert done.exit_code == 0, done.output
    assert f"deleted 4 MLflow runs of 'gone' from {uri}" in done.output
    assert not directory.exists()
    active = {r.info.run_id for r in client.search_runs([experiment_id])}
    assert active == {other}
    deleted = {r.info.run_id for r in client.search_runs([experiment_id],
                                                          run_view_type=ViewType.DELETED_ONLY)}
    assert deleted == {parent, *trials}


def test_launches_moved_aside_go_with_it_and_look_alikes_stay(tmp_path):
    directory = finished(tmp_path)
    aside = [directory.with_name("gone.aborted-20261201-101500"),
             directory.with_name("gone.aborted-20261201-101500-2")]
    for kept in aside:
        shutil.copytree(directory, kept)  # what move_aside leaves: a whole experiment
    alike = [directory.with_name(n) for n in ("gone.aborted-notes", "gone2", "gone-aborted")]
    for other in alike:
        other.mkdir()
    asked = rm(str(directory), answer="n\n")
    assert ("the 2 launches moved aside beside it (gone.aborted-20261201-101500, "
            "gone.aborted-20261201-101500-2)") in asked.output, asked.output
    assert all(kept.is_dir() for kept in aside)  # no answer removes nothing

    done = rm(str(directory), "--yes")
    assert done.exit_code == 0, done.output
    assert (f"removed experiment 'gone' ({directory}) and the 2 launches moved aside beside "
            "it") in done.output
    assert sorted(p.name for p in directory.parent.iterdir()) == [
        "gone-aborted", "gone.aborted-notes", "gone2"]


def test_with_mlflow_the_retrains_and_the_launches_moved_aside_go_too(tmp_path):
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    from search.tracking.names import RETRAIN_TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("gone")
    parent, earlier, other = (client.create_run(experiment_id).info.run_id for _ in range(3))
    retrain = client.create_run(experiment_id, tags={
        f"{RETRAIN_TAG}.parent_run_id": parent}).info.run_id
    others_retrain = client.create_run(experiment_id, tags={
        f"{RETRAIN_TAG}.parent_run_id": other}).info.run_id
    earlier_trial = client.create_run(experiment_id, tags={
        "mlflow.parentRunId": earlier}).info.run_id
    directory = finished(tmp_path, parent_run_id=parent)
    aside = directory.with_name("gone.aborted-20261201-101500")
    shutil.copytree(directory, aside)
    state = json.loads((aside / "resnet_search.json").read_text())
    (aside / "resnet_search.json").write_text(json.dumps({**state, "parent_run_id": earlier}))

    done = rm(str(directory), "--yes", "--mlflow")
    assert done.exit_code == 0, done.output
    assert f"deleted 4 MLflow runs of 'gone' from {uri}" in done.output
    active = {r.info.run_id for r in client.search_runs([experiment_id])}
    assert active == {other, others_retrain}
    deleted = {r.info.run_id for r in client.search_runs([experiment_id],
                                                          run_view_type=ViewType.DELETED_ONLY)}
    assert deleted == {parent, retrain, earlier, earlier_trial}
    assert not aside.exists()


def test_on_s3_the_prefix_goes_whole_and_a_running_one_stays(s3):
    def on_s3(name: str) -> Experiment:
        experiment = Experiment(locate(name, f"{s3.uri}/runs", "sqlite:///x.db", "data",
                                       Path("/")))
        experiment.save_state(State(name=name, spec_hash="h", parent_run_id="p",
                                    tracking_uri="sqlite:///x.db", status=Status.FINISHED,
                                    created_at=1.0, updated_at=1.0))
        experiment.save_spec({"name": name})
        (experiment.directory / "ray" / "t1" / "result.json").write_text("{}\n")
        (experiment.directory / LOG_FILE).write_text("=== launch ===\n")
        return experiment

    on_s3("gone")
    running = on_s3("running")
    uri = f"{s3.uri}/runs/gone"
    done = rm(uri, "--yes")
    assert done.exit_code == 0, done.output
    assert s3.fs.find(f"{s3.name}/runs/gone") == []
    with running.lease():
        refused = rm(f"{s3.uri}/runs/running", "--yes")
        assert refused.exit_code == 1 and "experiment 'running' is running" in refused.output
    assert s3.fs.cat_file(f"{s3.name}/runs/running/ray/t1/result.json") == b"{}\n"
