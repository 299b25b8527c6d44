"""`resnet-search report` and the Optuna study its driver persisted, on the shared finished
digits search (tests/e2e/finished.py): the real CLI in a fresh process, the real MLflow server
the search logged to, the real optuna-dashboard. The shared experiment is only read: a report
that writes into an experiment's directory gets a copy of it."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import requests
import yaml
from finished import NAME
from ports import free_port

from search.engine.trial_states import OPTUNA_STATE
from search.experiment.record import Experiment
from search.experiment.state import read_state
from search.wait.rules import Look, Verdict
from search.wait.waiter import wait_until

PLOTS = ["optimization_history", "param_importances", "parallel_coordinate", "slice",
         "learning_curves"]


def copied(finished, tmp_path: Path) -> tuple[Path, Path]:
    """(a spec whose storage_path holds a copy of the finished experiment, that copy)."""
    runs = tmp_path / "runs"
    shutil.copytree(finished.experiment, runs / NAME)
    spec_path = tmp_path / "results.yaml"
    spec_path.write_text(yaml.safe_dump({**finished.spec, "storage_path": str(runs)},
                                        sort_keys=False))
    return spec_path, runs / NAME


def expected_files(results) -> set[str]:
    """What a report of these results holds: every plot (Optuna's read every trial at a common
    epoch, which every trial of a finished search reached), and plotly.js once beside them."""
    assert all(t.curve() for t in results.trials)
    files = {f"{plot}.{ext}" for plot in PLOTS for ext in ("html", "png")}
    return files | {"index.html", "leaderboard.csv", "plotly.min.js"}


def test_report_writes_every_plot_and_logs_them_to_the_parent_run(finished, cli, tmp_path):
    from mlflow.tracking import MlflowClient

    spec_path, experiment = copied(finished, tmp_path)
    results = Experiment.open(experiment).recorded_results()
    done = cli("report", str(spec_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr

    folder = experiment / "report"  # the default: beside the record
    written = {p.name for p in folder.iterdir()}
    assert written == expected_files(results)
    assert all((folder / name).stat().st_size > 0 for name in written)
    if "param_importances.png" not in written:
        assert "not drawn: Parameter importances (fANOVA)" in done.stderr
    with open(folder / "leaderboard.csv", newline="") as handle:
        assert [r["trial_id"] for r in csv.DictReader(handle)] == [
            t.trial_id for t in results.trials]
    page = (folder / "learning_curves.html").read_text()
    assert all(t.trial_id in page for t in results.trials if t.curve())
    assert f"report: {folder / 'index.html'}" in done.stdout
    assert f"best: trial {results.best.trial_id}, val_acc {results.best.best:.4f}" in done.stdout

    # on the MLflow server, under the parent run the search logged to
    state = read_state(experiment)
    logged = MlflowClient(finished.server_url).list_artifacts(state.parent_run_id, "report")
    assert {Path(a.path).name for a in logged} == written
    assert all(a.file_size and a.file_size > 0 for a in logged)
    assert f"MLflow: parent run {state.parent_run_id}" in done.stdout


def test_the_driver_persisted_the_study_and_optuna_dashboard_opens_it(finished, tmp_path):
    results = Experiment.open(finished.experiment).recorded_results()
    written = finished.experiment / "study.db"
    assert written.is_file(), "the driver wrote no study.db at the end of the launch"
    study_db = tmp_path / "study.db"  # the dashboard gets a copy: the shared one is read-only
    shutil.copy(written, study_db)
    study = optuna.load_study(study_name=NAME, storage=f"sqlite:///{study_db}")
    assert len(study.trials) == len(results.trials)
    # each trial as the sampler was told about it (a finished search: no trial unfinished)
    assert {t.user_attrs["trial_id"]: t.state for t in study.trials} == {
        t.trial_id: OPTUNA_STATE[t.outcome] for t in results.trials}
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == sum(
        t.outcome.value == "completed" for t in results.trials)
    for trial in study.trials:
        record = next(t for t in results.trials if t.trial_id == trial.user_attrs["trial_id"])
        assert trial.intermediate_values == dict(record.curve())

    # the README's one command: optuna-dashboard sqlite:///runs/NAME/study.db
    port = free_port()
    log = open(tmp_path / "dashboard.log", "w")
    dashboard = subprocess.Popen(
        [str(Path(sys.executable).parent / "optuna-dashboard"), f"sqlite:///{study_db}",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        studies = answer(f"{url}/api/studies", dashboard, tmp_path / "dashboard.log")
        (summary,) = studies["study_summaries"]
        assert summary["study_name"] == NAME and summary["directions"] == ["maximize"]
        detail = requests.get(f"{url}/api/studies/{summary['study_id']}", timeout=120).json()
        assert len(detail["trials"]) == len(results.trials)
        assert detail["objective_names"] == ["val_acc"]
    finally:
        os.killpg(dashboard.pid, signal.SIGTERM)
        dashboard.wait(120)


def answer(url: str, proc: subprocess.Popen, log: Path) -> dict:
    """The dashboard's JSON answer at `url`, waited for as long as the dashboard lives (the
    product's own wait, search/wait): on a loaded machine it takes minutes to start, which is
    slow, not broken. pytest-timeout is the guard against a hang."""
    got: list[dict] = []

    def look() -> Look:
        if proc.poll() is not None:
            return Look(ready=False, alive=False)
        try:
            reply = requests.get(url, timeout=60)
        except requests.RequestException:  # not listening yet, or too busy to reply in time
            return Look(ready=False)
        got[:] = [reply.json()] if reply.ok else []
        return Look(ready=reply.ok)

    if wait_until(look, f"optuna-dashboard at {url}", poll_s=0.3).verdict is Verdict.GONE:
        pytest.fail(f"optuna-dashboard exited {proc.returncode}: {log.read_text()[-2000:]}")
    return got[0]


def test_report_of_an_experiment_on_s3_goes_to_the_working_directory(
        finished, cli, s3, tmp_path):
    s3.fs.put(str(finished.experiment), f"{s3.name}/runs/{NAME}", recursive=True)
    uri = f"{s3.uri}/runs/{NAME}"
    results = Experiment.open(uri).recorded_results()
    done = cli("report", uri, "--no-mlflow", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = tmp_path / f"{NAME}-report"
    assert {p.name for p in folder.iterdir()} == expected_files(results)
    assert not s3.fs.exists(f"{s3.name}/runs/{NAME}/report")
    assert "MLflow:" not in done.stdout


def test_a_bad_output_folder_or_a_missing_experiment_is_one_line(finished, cli, tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    bad = cli("report", str(finished.spec_path), "-o", str(a_file), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (f"bad --output: --output is '{a_file}', which is a file; give "
                                  "a directory (created if missing)")
    missing = cli("report", str(tmp_path), cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith(f"no experiment: {tmp_path} holds no experiment record")


def test_tensorboard_shows_the_whole_search_from_its_ray_folder(finished):
    # The README's `tensorboard --logdir <storage_path>/<name>/ray`: Ray's TBX logger writes an
    # event file in every trial directory (tensorboardX comes with ray[tune]); TensorBoard's own
    # reader must find one run per trial, named by its id, with the objective at every epoch
    # and the sampled parameters in its HParams tab.
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    import search

    trials = search.open_experiment(finished.experiment).trials()
    board = EventMultiplexer().AddRunsFromDirectory(str(finished.experiment / "ray"))
    board.Reload()
    assert sorted(board.Runs()) == sorted(trials.trial_id)
    metric = trials.attrs["metric"]
    for trial in trials.itertuples():
        epochs = [(e.step, e.value) for e in board.Scalars(trial.trial_id, f"ray/tune/{metric}")]
        assert [step for step, _ in epochs] == list(range(1, trial.epochs + 1))
        assert [value for _, value in epochs] == pytest.approx(trial.curve)
    assert sorted(board.PluginRunToTagToContent("hparams")) == sorted(trials.trial_id)
