"""Fixtures more than one test package uses: a real S3-compatible server, a fresh MLflow SQLite
store copied from one migrated per session; the `ray` marker, given by the fixtures that start
Ray (tests/support/ray_marker.py); and the rule of the `cuda` marker: such a test selected on a
machine without a GPU fails, it is never skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from mlflow_template import build_template, copy_template
from objectstore import credentials, new_bucket, s3_server
from ray_marker import starts_ray
# What the xdist workers of one run share (tests/support/shared.py): its hooks, wired in here.
from shared import pytest_configure, pytest_configure_node, pytest_unconfigure  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A fresh bucket on the test S3 server, with this process's (and so every process it
    starts) environment pointing at the server."""
    for key, value in credentials(s3_endpoint).items():
        monkeypatch.setenv(key, value)
    return new_bucket(s3_endpoint)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store at the installed schema, migrated once per session (per
    xdist worker). Never open it: copy it (`fresh_mlflow`)."""
    return build_template(tmp_path_factory.mktemp("mlflow-template") / "mlflow.db")


@pytest.fixture
def fresh_mlflow(mlflow_template) -> Callable[[Path], str]:
    """`fresh_mlflow(path)`: a private, empty MLflow store at `path` (a copy of the template),
    and its URI; seconds cheaper than letting MLflow migrate a new file."""
    return lambda db: copy_template(mlflow_template, Path(db))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the marks must be there by then
def pytest_collection_modifyitems(items):
    for item in items:
        where = Path(item.path).resolve()
        if where.is_relative_to(ROOT) and starts_ray(where.relative_to(ROOT).as_posix(),
                                                     getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)


def pytest_runtest_setup(item):
    if item.get_closest_marker("cuda") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.fail("marked cuda, but torch sees no CUDA device here: a machine without a "
                        "GPU runs the tests with -m 'not cuda'", pytrace=False)
