"""Fixtures more than one test package uses: a real S3-compatible server."""

from __future__ import annotations

import pytest
from objectstore import credentials, new_bucket, s3_server


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
