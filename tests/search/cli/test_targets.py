"""What a TARGET names, decided once (search/cli/arguments.py) through the Python API's
`record_of`: the CLI and `search.open_experiment` find the same experiment for the same target,
and what names none ends the command with its exit code and a one-line reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml

import search
from search.api.experiment import NoSuchTarget
from search.cli.arguments import experiment_of
from search.experiment.record import NoExperiment
from search.experiment.storage import UnsupportedStorage
from warm_records import record, search_spec


@pytest.fixture
def place(tmp_path) -> Path:
    record(tmp_path, search_spec("demo"))  # tmp_path/spec.yaml, its record in tmp_path/runs/demo
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(search_spec("bad", budget={"trials": 0})))
    return tmp_path


@pytest.mark.parametrize("target, found", [
    ("spec.yaml", "demo"),  # a spec file: where its experiment lives
    ("runs/demo", "demo"),  # an experiment directory
    ("file://{here}/runs/demo", "demo"),  # its URI
])
def test_the_cli_and_the_api_find_the_same_experiment(place, monkeypatch, target, found):
    monkeypatch.chdir(place)
    target = target.format(here=place)
    by_cli = experiment_of(target)
    by_api = search.open_experiment(target)
    assert by_cli.name == by_api.name == found
    assert str(by_cli.directory) == by_api.directory == str(place / "runs" / found)


@pytest.mark.parametrize("target, code, said, raised", [
    ("nowhere", 2, "neither a spec file nor an experiment directory", NoSuchTarget),
    ("gs://bucket/runs/demo", 2, "unsupported storage", UnsupportedStorage),
    ("bad.yaml", 2, "budget.trials", search.SpecError),  # a spec that is not valid
    ("empty", 1, "no experiment", NoExperiment),  # no record
])
def test_what_names_no_experiment_says_why_with_its_exit_code(place, monkeypatch, capsys,
                                                              target, code, said, raised):
    monkeypatch.chdir(place)
    with pytest.raises(typer.Exit) as ended:
        experiment_of(target)
    assert ended.value.exit_code == code
    assert said in capsys.readouterr().err
    with pytest.raises(raised):  # the API raises what the CLI turned into that exit
        search.open_experiment(target)
