"""The Python API on a finished search's record (tests/support/warm_records.py: three trials of
digits as Ray lays them out, written without Ray), and on specs given as mappings."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas
import pytest
import yaml

import search
from search.experiment.record import NoExperiment
from loaded_modules import loaded_by
from warm_records import TRIALS, record, search_spec


@pytest.fixture
def finished(tmp_path) -> Path:
    return record(tmp_path, search_spec("demo"))


def test_the_trials_of_an_experiment_as_a_dataframe(finished):
    frame = search.open_experiment(finished).trials()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == ["trial_id", "outcome", "status", "epochs", "best", "curve",
                                   "checkpoint", "error", "params.lr", "params.schedule"]
    assert frame.attrs == {"metric": "val_acc", "mode": "max"}
    assert list(frame.trial_id) == ["t2", "t1", "t3"]  # best first
    assert list(frame.outcome) == ["completed", "completed", "killed"]
    assert list(frame.epochs) == [2, 2, 1]
    assert list(frame.best) == [0.9, 0.7, 0.2]
    assert [list(curve) for curve in frame.curve] == [TRIALS[t][1] for t in ("t2", "t1", "t3")]
    assert list(frame["params.lr"]) == [0.3, 0.05, 0.02]
    assert list(frame["params.schedule"]) == ["step", "cosine", "step"]
    assert frame.checkpoint[0] == str(finished / "ray" / "t2" / "checkpoint_000001")


def test_the_same_experiment_from_its_spec_file_and_its_directory(finished, tmp_path):
    by_spec = search.open_experiment(tmp_path / "spec.yaml")
    by_directory = search.open_experiment(str(finished))
    assert by_spec.directory == by_directory.directory == str(finished)
    assert by_spec.trials().equals(by_directory.trials())


def test_best_status_and_curves(finished):
    experiment = search.open_experiment(finished)
    best = experiment.best()
    assert (best.trial_id, best.metric, best.value, best.epochs) == ("t2", "val_acc", 0.9, 2)
    assert best.params == {"lr": 0.3, "schedule": "step"}
    assert best.config["lr"] == 0.3 and best.config["schedule"] == "step"
    assert best.config["depth"] == 20  # the full config, defaults included
    assert best.checkpoint == str(finished / "ray" / "t2" / "checkpoint_000001")

    status = experiment.status()
    assert (status.name, status.status, status.trials_budget) == ("demo", "finished", 3)
    assert status.best["trial_id"] == "t2" and status.epochs_used == 5

    curves = experiment.curves()
    assert len(curves) == 5
    assert list(curves[curves.trial_id == "t1"].val_acc) == [0.4, 0.7]


def test_a_diverged_epoch_is_nan_in_the_curve(tmp_path):
    directory = record(tmp_path, search_spec("nan"), trials={"t1": ({"lr": 0.1}, [0.3, math.nan])})
    frame = search.open_experiment(directory).trials()
    assert frame.curve[0][0] == 0.3 and math.isnan(frame.curve[0][1])


def test_no_best_before_any_trial_has_a_value(tmp_path):
    directory = record(tmp_path, search_spec("none"), trials={"t1": ({"lr": 0.1}, [])})
    assert search.open_experiment(directory).best() is None


def test_what_is_no_experiment_is_said(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a spec file nor an experiment"):
        search.open_experiment(tmp_path / "nothing")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(search_spec("never")))
    with pytest.raises(NoExperiment, match="never launched"):
        search.open_experiment(tmp_path / "spec.yaml").status()


def test_validate_resolves_a_good_mapping(tmp_path):
    resolved = search.validate(search_spec("ok"), trials=5)
    assert resolved["budget"]["trials"] == 5  # the override applied
    assert resolved["sampler"]["type"] == "tpe"  # a default filled in
    assert resolved["space"]["lr"]["float"] == [0.01, 0.5]
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(search_spec("ok")))
    assert search.validate(path)["name"] == "ok"


def test_validate_names_every_problem_of_a_bad_mapping_at_once():
    bad = search_spec("bad", budget={"trials": 0, "max_epochs": 2},
                      space={"lr": {"float": [0.01, 0.5]}, "block": {"choice": ["nope"]}})
    with pytest.raises(search.SpecError) as raised:
        search.validate(bad)
    fields = sorted(problem.loc for problem in raised.value.problems)
    assert fields == ["budget.trials", "space.block.choice[0]"], str(raised.value)
    assert "nope" in str(raised.value) and "budget.trials" in str(raised.value)


def test_importing_search_loads_no_engine():
    code = ("import search\n"
                "assert callable(search.open_experiment) and callable(search.validate)\n")
    assert loaded_by(code, ("torch", "torchvision", "ray", "optuna", "mlflow", "pandas")) == []


def test_launch_of_a_finished_experiment_returns_its_results_without_ray(finished, tmp_path):
    code = ("import sys, search\n"
            f"ending = search.launch({str(tmp_path / 'spec.yaml')!r})\n"
            "print(ending.status.value, ending.already_finished, "
            "[t.trial_id for t in ending.results.trials], 'ray' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["finished", "True", "['t2',", "'t1',", "'t3']", "False"]


def test_submit_refuses_a_bad_spec_before_reaching_any_cluster():
    from search.remote.jobs import JobsError

    bad = search_spec("bad", budget={"trials": 0, "max_epochs": 2})
    with pytest.raises(search.SpecError, match="budget.trials"):
        search.submit(bad, address="http://127.0.0.1:1")
    with pytest.raises(JobsError, match="no Ray Jobs API answers at http://127.0.0.1:1"):
        search.submit(search_spec("good"), address="http://127.0.0.1:1")


def test_an_experiment_in_an_object_store_by_its_uri(finished, s3):
    from search.experiment.storage import as_path

    remote = as_path(f"{s3.uri}/runs/demo")
    for file in finished.rglob("*"):
        if file.is_file():
            remote.joinpath(str(file.relative_to(finished))).write_bytes(file.read_bytes())
    experiment = search.open_experiment(f"{s3.uri}/runs/demo")
    assert experiment.directory == f"{s3.uri}/runs/demo"
    local = search.open_experiment(finished).trials().drop(columns="checkpoint")
    assert experiment.trials().drop(columns="checkpoint").equals(local)
    assert experiment.best().trial_id == "t2" and experiment.status().status == "finished"


def test_submit_and_the_cli_reach_the_same_jobs_api_by_default():
    # One default, decided in search.remote: a changed port reaches both.
    import inspect

    from typer.testing import CliRunner

    from search.cli import app
    from search.remote import JOBS_API

    assert inspect.signature(search.submit).parameters["address"].default == JOBS_API
    helped = CliRunner().invoke(app, ["submit", "--help"], terminal_width=300)
    assert f"[default: {JOBS_API}]" in helped.output, helped.output
