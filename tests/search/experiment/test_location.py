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


# --- where experiments may live: checked before anything is created ------------------------------

def storage_cases(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return {
        "/proc/nope": "no directory can be written",
        "/sys": "no directory can be written",
        str(a_file): "is a file, not a directory",
        str(a_file / "below"): "is a file, not a directory",
        str(tmp_path / "new" / "deeper"): None,  # created by the launch, parents included
        str(tmp_path): None,
    }


def test_storage_problem(tmp_path):
    from search.experiment.location import absolute, storage_problem

    for raw, fragment in storage_cases(tmp_path).items():
        reason = storage_problem(raw, absolute(raw, tmp_path))
        if fragment is None:
            assert reason is None, (raw, reason)
        else:
            assert reason is not None and fragment in reason and repr(raw) in reason, (raw, reason)
    assert not (tmp_path / "new").exists()  # checking created nothing
    assert not list(tmp_path.glob(".resnet-search-writable-*"))


@pytest.mark.parametrize("uri", ["gs://bucket/runs", "hdfs://nn/runs", "az://c/runs"])
def test_object_stores_without_a_lease_are_refused_by_name(uri, tmp_path):
    from search.experiment.location import storage_of
    from search.spec.problems import SpecError

    with pytest.raises(SpecError) as refused:
        storage_of(uri, tmp_path)
    text = str(refused.value)
    assert "storage_path" in text and repr(uri) in text
    assert f"{uri.split(':')[0]}:// is not supported" in text and "s3://" in text


@pytest.mark.parametrize("uri, expected", [
    ("file:///tmp/runs", Path("/tmp/runs")),
    ("runs", None),  # relative: against the spec's directory
])
def test_file_uris_and_paths_are_local_directories(uri, expected, tmp_path):
    from search.experiment.location import storage_of
    from search.experiment.storage import is_local

    got = storage_of(uri, tmp_path)
    assert is_local(got) and got == (expected or tmp_path / "runs")


def test_s3_uris_are_object_store_paths(tmp_path):
    from search.experiment.location import storage_of
    from search.experiment.storage import is_local

    got = storage_of("s3://bucket/runs/", tmp_path)
    assert not is_local(got) and str(got) == "s3://bucket/runs"
    assert str(got / "exp") == "s3://bucket/runs/exp" and got.name == "runs"
