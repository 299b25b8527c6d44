"""Where a finished launch tells the user to compare the trials (pure for a local store)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from search.cli.report import mlflow_link


def ending(uri: str, directory: str) -> SimpleNamespace:
    return SimpleNamespace(location=SimpleNamespace(tracking_uri=uri, directory=directory),
                           parent_run_id="p")


@pytest.mark.parametrize("uri,directory,expected", [
    # under the working directory: relative, shorter
    ("sqlite:///mlflow.db", "{cwd}/runs/e2e-digits", "resnet-search ui runs/e2e-digits"),
    ("file:///tmp/mlruns", "{cwd}/runs/my search", "resnet-search ui 'runs/my search'"),
    # elsewhere: absolute, as the record says
    ("sqlite:///mlflow.db", "/elsewhere/runs/x", "resnet-search ui /elsewhere/runs/x"),
    # an object store: its URI
    ("sqlite:///mlflow.db", "s3://bucket/runs/x", "resnet-search ui s3://bucket/runs/x"),
])
def test_a_local_store_is_opened_with_the_ui_command(uri, directory, expected, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = directory.format(cwd=tmp_path)
    shown = where if where.startswith("s3://") else Path(where)
    assert mlflow_link(ending(uri, shown)) == expected
