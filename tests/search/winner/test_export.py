"""`export`: a search's winner as a one-trial spec that `load_spec` (so `validate`) accepts,
trains exactly the winner's config, and records where it came from. The experiments are
recorded on disk as a finished search leaves them (our record files beside the trial
directories Ray writes), built without Ray."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pytest

from resnet_core.config import resolved
from search.experiment.location import locate
from search.experiment.record import Experiment
from search.experiment.results import Results, TrialRecord, trial_config
from search.experiment.state import Status
from search.experiment.summary import job_of_saved
from search.spec.model import load_spec, parse_spec
from search.spec.outcome import Outcome
from search.winner.export import (ExportRefused, absolute_root, best_name, export,
                                  export_experiment)
from search.winner.header import read_provenance
from warm_records import record as write_record

PARENT_RUN = "0123456789abcdef0123456789abcdef"


def search_spec(**changes) -> dict:
    """A digits search as a user writes it (relative paths: relative to the spec's directory)."""
    spec = {
        "name": "digits-search",
        "data": {"dataset": "digits", "root": "data", "val_fraction": 0.2},
        "objective": {"metric": "val_acc", "mode": "max"},
        "budget": {"trials": 3, "max_epochs": 3},
        "trial": {"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0},
        "fixed": {"depth": 20, "width": 0.25, "batch_size": 64},
        "space": {"lr": {"float": [0.01, 0.5], "log": True},
                  "schedule": {"choice": ["cosine", "step"]},
                  "milestones": {"choice": [[0.5, 0.75], [0.3, 0.6]]}},
        "tracking": {"mlflow_uri": "sqlite:///mlflow.db"},
        "storage_path": "runs",
    }
    spec.update(changes)
    return spec


# trial id -> (sampled params, val_acc per epoch); NaN: a diverged epoch
TRIALS = {
    "t001": ({"lr": 0.05, "schedule": "cosine", "milestones": [0.5, 0.75]}, [0.41, 0.62, 0.71]),
    "t002": ({"lr": 0.3, "schedule": "step", "milestones": [0.3, 0.6]}, [0.52, 0.80, 0.86]),
    "t003": ({"lr": 0.5, "schedule": "cosine", "milestones": [0.3, 0.6]}, [float("nan")]),
}
WINNER = "t002"


def record(base: Path, spec: dict, trials: Optional[dict] = None,
           status: Status = Status.FINISHED) -> Path:
    """The record of a search of `spec` launched from `base` (tests/support/warm_records.py),
    with this module's TRIALS unless given; the experiment directory."""
    return write_record(base, spec, TRIALS if trials is None else trials, status, PARENT_RUN)


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A finished 3-trial search launched from `tmp_path/search/spec.yaml`."""
    return record(tmp_path / "search", search_spec())


WHEN = "2030-01-02T03:04:05+00:00"


def exported_from(directory: Path, **kw):
    return export_experiment(Experiment.open(directory), when=WHEN, version="9.9", **kw)


def written(text: str, path: Path):
    """The exported text as a file somewhere else, read back as `validate` reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return load_spec(path)


@pytest.mark.parametrize("root,storage_path,storage,expected", [
    ("data", "runs", "/w/spaces/runs", "/w/spaces/data"),  # base = /w/spaces
    ("../data", "runs", "/w/spaces/runs", "/w/data"),
    ("data", "out/runs", "/w/spaces/out/runs", "/w/spaces/data"),
    ("./data/./x", "./runs", "/w/spaces/runs", "/w/spaces/data/x"),
    ("../data", "../runs", "/w/runs", "/w/data"),  # base = /w/<unknown>: .. reaches /w
    ("../../d", "../runs", "/w/runs", "/d"),
    ("data", "../runs", "/w/runs", None),  # under the unknown base directory
    ("data", "runs", "/w/elsewhere", None),  # storage is not base/runs
    ("data", "/abs/runs", "/abs/runs", None),  # an absolute storage_path ties nothing
    ("data", "s3://bucket/runs", "s3://bucket/runs", None),
    ("data", "~/runs", "/home/u/runs", None),
    ("/srv/data", "../runs", "/w/runs", "/srv/data"),  # absolute: kept as written
    ("~/.cache/data", "s3://bucket/runs", "s3://bucket/runs", "~/.cache/data"),
])
def test_absolute_root_is_what_the_storage_path_tells(root, storage_path, storage, expected):
    assert absolute_root(root, storage_path, storage) == expected


@pytest.mark.parametrize("name,expected", [
    ("digits", "digits-best"), ("x" * 100, "x" * 95 + "-best"), ("a.b_c", "a.b_c-best")])
def test_best_name_fits_the_name_rule(name, expected):
    assert best_name(name) == expected
    assert parse_spec(search_spec(name=best_name(name))).name == expected


def test_the_export_is_a_valid_one_trial_spec_of_the_winners_full_config(recorded, tmp_path):
    exported = exported_from(recorded)
    spec = written(exported.text, tmp_path / "elsewhere" / "deeper" / "best.yaml")
    search = parse_spec(search_spec(), base_dir=recorded.parent.parent)
    assert spec.name == "digits-search-best"
    assert (spec.budget.trials, spec.budget.max_epochs) == (1, search.budget.max_epochs)
    assert spec.space == {} and spec.scheduler.type == "fifo"
    assert spec.objective == search.objective and spec.trial == search.trial
    # every field of the winner's config, defaults included; epochs come from the budget
    winner = trial_config(search.job(), TRIALS[WINNER][0])
    assert resolved(spec.job().train_config({})) == winner
    assert "epochs" not in spec.fixed and spec.fixed["momentum"] == winner["momentum"]
    assert spec.fixed["milestones"] == [0.3, 0.6]
    assert {k: v for k, v in spec.data.model_dump().items() if k != "root"} == {
        k: v for k, v in search.data.model_dump().items() if k != "root"}


def test_paths_are_absolute_so_the_file_means_the_same_anywhere(recorded, tmp_path):
    base = recorded.parent.parent  # the directory of the spec that launched the search
    spec = written(exported_from(recorded).text, tmp_path / "moved" / "best.yaml")
    assert spec.data.root == str(base / "data")
    assert spec.storage_path == str(base / "runs")
    assert spec.tracking.mlflow_uri == f"sqlite:///{base / 'mlflow.db'}"
    assert spec.tracking.experiment == "digits-search"  # the search's MLflow experiment
    again = locate(spec.name, spec.storage_path, spec.tracking.mlflow_uri, spec.data.root,
                   spec.base_dir)
    assert again.directory == base / "runs" / "digits-search-best"  # beside the search


def test_the_header_holds_the_provenance(recorded):
    exported = exported_from(recorded, file_name="out/best.yaml")
    provenance = read_provenance(exported.text)
    assert provenance == exported.provenance
    assert provenance["experiment"] == "digits-search"
    assert provenance["directory"] == str(recorded)
    assert provenance["trial_id"] == WINNER and provenance["epochs"] == 3
    assert provenance["objective"] == {"metric": "val_acc", "mode": "max", "value": 0.86}
    assert provenance["params"] == TRIALS[WINNER][0]
    assert provenance["checkpoint"] == str(recorded / "ray" / WINNER / "checkpoint_000002")
    assert provenance["outcome"] == Outcome.COMPLETED.value
    assert provenance["status"] == "finished"
    assert provenance["spec_hash"] == parse_spec(search_spec()).spec_hash()
    assert provenance["mlflow"] == {"experiment": "digits-search", "parent_run_id": PARENT_RUN}
    assert (provenance["exported_at"], provenance["resnet_search"]) == (WHEN, "9.9")
    head = exported.text.split("\nname:")[0]
    assert all(line.startswith("#") for line in head.strip().splitlines())
    assert "resnet-search retrain out/best.yaml" in head and "trial t002" in head


def test_from_the_spec_file_or_the_directory_the_export_is_the_same(recorded):
    by_spec = export_experiment(Experiment(locate_of(recorded.parent.parent / "spec.yaml")),
                                when=WHEN, version="9.9")
    assert by_spec.spec == exported_from(recorded).spec
    assert by_spec.text == exported_from(recorded).text


def locate_of(path: Path) -> object:
    spec = load_spec(path)
    return locate(spec.name, spec.storage_path, spec.tracking.mlflow_uri, spec.data.root,
                  spec.base_dir)


def test_a_relative_root_the_directory_cannot_tell_is_refused_but_the_spec_file_tells(
        tmp_path):
    spec = search_spec(storage_path="../runs")  # data.root "data": under the spec's directory
    directory = record(tmp_path / "spaces", spec)
    with pytest.raises(ExportRefused, match="data.root is 'data'.*run export-best on that "
                                            "spec file instead"):
        exported_from(directory)
    by_spec = export_experiment(Experiment(locate_of(tmp_path / "spaces" / "spec.yaml")),
                                when=WHEN, version="9.9")
    assert by_spec.spec["data"]["root"] == str(tmp_path / "spaces" / "data")


def test_a_running_search_exports_its_best_so_far(tmp_path):
    directory = record(tmp_path / "s", search_spec(), status=Status.RUNNING)
    assert exported_from(directory).provenance["status"] == "running"


def test_no_trial_with_a_finite_objective_is_no_winner(tmp_path):
    trials = {"t001": ({"lr": 0.5, "schedule": "cosine", "milestones": [0.5, 0.75]},
                       [float("nan")])}
    directory = record(tmp_path / "s", search_spec(), trials=trials)
    with pytest.raises(ExportRefused, match="experiment 'digits-search' has no winner: none of "
                                            "its 1 trials .1 with results. reached a finite "
                                            "val_acc"):
        exported_from(directory)
    empty = record(tmp_path / "e", search_spec(), trials={})
    with pytest.raises(ExportRefused, match="none of its 0 trials"):
        exported_from(empty)


def test_a_winner_whose_config_cannot_be_rebuilt_is_refused(recorded):
    saved = Experiment.open(recorded).saved_spec()
    job = job_of_saved(saved)
    broken = TrialRecord(trial_id="t9", params={"lr": -1.0}, config={}, results=[{"epoch": 1}],
                         status="TERMINATED", error=None, checkpoint=None,
                         outcome=Outcome.COMPLETED, best=0.9, epochs=1, metric="val_acc",
                         config_error="lr is -1.0 but must be > 0")
    results = Results(metric=job.metric, mode=job.mode, trials=[broken])
    with pytest.raises(ExportRefused, match="trial t9, has no config this version can rebuild: "
                                            "lr is -1.0 but must be > 0"):
        export(saved, None, results, directory=str(recorded), data_root="/d", storage="/s",
               tracking_uri="sqlite:////m.db", when=WHEN, version="9.9")


def test_a_minimising_objective_exports_the_lowest(tmp_path):
    spec = search_spec(objective={"metric": "val_loss", "mode": "min"})
    exported = exported_from(record(tmp_path / "s", spec))
    # val_loss = 1 - val_acc in the record: the lowest loss is the highest accuracy's trial
    assert exported.provenance["trial_id"] == WINNER
    assert math.isclose(exported.provenance["objective"]["value"], 1 - 0.86)
    assert exported.spec["objective"] == {"metric": "val_loss", "mode": "min"}


# --- several objectives: a winner picked from the Pareto front --------------------------------

SEVERAL = [{"metric": "val_acc", "mode": "max"}, {"metric": "params", "mode": "min"}]
# all three ran the budget: a accurate and large, b nearly as accurate and small (the knee),
# c small and poor; d broke the constraint
FRONT_TRIALS = {
    "a": ({"lr": 0.05, "schedule": "cosine", "milestones": [0.5, 0.75]}, [0.5, 0.8, 0.90],
          {"params": 9e5}),
    "b": ({"lr": 0.1, "schedule": "cosine", "milestones": [0.5, 0.75]}, [0.5, 0.8, 0.88],
          {"params": 2e5}),
    "c": ({"lr": 0.3, "schedule": "step", "milestones": [0.3, 0.6]}, [0.3, 0.4, 0.50],
          {"params": 1e5}),
    "d": ({"lr": 0.2, "schedule": "step", "milestones": [0.3, 0.6]}, [0.6, 0.9, 0.95],
          {"params": 5e6}),
}


@pytest.fixture
def front_search(tmp_path: Path) -> Path:
    return record(tmp_path / "search", search_spec(
        objective=SEVERAL, constraints=[{"metric": "params", "max": 1e6}],
        budget={"trials": 4, "max_epochs": 3}), FRONT_TRIALS)


def on_front(results: Results) -> list[str]:
    from search.engine.pareto import on_front as trials_on_front

    return trials_on_front(results)


@pytest.mark.parametrize("rule, winner", [
    (None, "b"),  # the knee
    ("max val_acc", "a"),
    ("min params", "c"),
    ("max val_acc where params < 5e5", "b"),
])
def test_with_several_objectives_the_winner_is_picked_from_the_front(front_search, tmp_path,
                                                                     rule, winner):
    from search.winner.pick import KNEE, parse

    exported = exported_from(front_search, front=on_front,
                             rule=parse(rule) if rule else None)
    source = exported.provenance
    assert source["trial_id"] == winner  # never d, which breaks the constraint
    values = {"a": (0.90, 9e5), "b": (0.88, 2e5), "c": (0.50, 1e5)}[winner]
    assert source["objectives"] == {"val_acc": values[0], "params": values[1]}
    assert source["picked_by"] == (str(parse(rule)) if rule else KNEE)
    spec = written(exported.text, tmp_path / "best.yaml")
    assert [(o.metric, o.mode) for o in spec.objectives] == [("val_acc", "max"),
                                                             ("params", "min")]
    assert read_provenance((tmp_path / "best.yaml").read_text())["objectives"] == \
        source["objectives"]


def test_a_rule_no_trial_of_the_front_meets_exports_nothing(front_search):
    from search.winner.pick import parse

    with pytest.raises(ExportRefused) as refused:
        exported_from(front_search, front=on_front,
                      rule=parse("max val_acc where params < 1e4"))
    assert "none of the 3 trials on the Pareto front meets 'max val_acc where params < 10000'" \
        in str(refused.value)


def test_one_objective_with_a_rule_picks_among_the_trials_of_the_whole_budget(recorded):
    from search.winner.pick import parse

    exported = exported_from(recorded, rule=parse("min val_acc"))
    assert exported.provenance["trial_id"] == "t001"  # the worse of the two that ran 3 epochs
    assert exported.provenance["picked_by"] == "min val_acc"
    assert exported_from(recorded).provenance["trial_id"] == WINNER  # no rule: as before
