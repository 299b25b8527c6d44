"""Where an experiment lives: relative to the spec file's directory, never the cwd."""

import os
from pathlib import Path

import pytest
from search.experiment.location import locate, resolve_tracking_uri

HOME = os.path.expanduser("~")

URIS = [
    # uri, expected (base dir /specs)
    ("sqlite:///mlflow.db", "sqlite:////specs/mlflow.db"),
    ("sqlite:///db/../mlflow.db", "sqlite:////specs/mlflow.db"),
    ("sqlite:///~/mlflow.db", f"sqlite:///{HOME}/mlflow.db"),
    ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("http://tracker:5000", "http://tracker:5000"),
    ("https://mlflow.example.org/x", "https://mlflow.example.org/x"),
    ("databricks", "databricks"),
    ("file:///abs/mlruns", "file:///abs/mlruns"),
]


@pytest.mark.parametrize("uri, expected", URIS)
def test_tracking_uri(uri, expected):
    assert resolve_tracking_uri(uri, Path("/specs")) == expected


PATHS = [
    # storage_path, data_root -> storage, data_root (base dir /specs)
    ("runs", "data", "/specs/runs", "/specs/data"),
    ("../runs", "./data/", "/runs", "/specs/data"),
    ("/shared/runs", "/shared/data", "/shared/runs", "/shared/data"),
    ("~/runs", "~/.cache/data", f"{HOME}/runs", f"{HOME}/.cache/data"),
]


@pytest.mark.parametrize("storage, root, expected_storage, expected_root", PATHS)
def test_locate(storage, root, expected_storage, expected_root):
    where = locate("exp", storage, "sqlite:///m.db", root, Path("/specs"))
    assert where.storage == Path(expected_storage)
    assert where.directory == Path(expected_storage) / "exp"
    assert where.data_root == expected_root
    assert where.tracking_uri == "sqlite:////specs/m.db"


def test_independent_of_the_cwd(tmp_path, monkeypatch):
    spec_dir = tmp_path / "spaces"
    spec_dir.mkdir()
    seen = set()
    for cwd in (tmp_path, spec_dir, Path("/")):
        monkeypatch.chdir(cwd)
        seen.add(locate("exp", "runs", "sqlite:///m.db", "data", spec_dir))
    assert len(seen) == 1
    assert seen.pop().directory == spec_dir / "runs" / "exp"


def test_relative_base_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = locate("exp", "runs", "http://x", "d", Path("spaces"))
    assert where.storage == tmp_path / "spaces" / "runs"
