"""Pure rules of the tuner (no Ray runtime)."""

from types import SimpleNamespace

import pytest

from search.tuner import slots, tracking_uri


@pytest.mark.parametrize("cpu, gpu, cluster, expected", [
    (1, 0, {"CPU": 2}, 2),
    (2, 0, {"CPU": 16}, 8),
    (2, 0.25, {"CPU": 16, "GPU": 1}, 4),  # four trials pack one GPU
    (1, 0.5, {"CPU": 16, "GPU": 2}, 4),
    (4, 0, {"CPU": 2}, 1),  # never 0: the launch check rejects what no node can hold
])
def test_default_concurrency_is_what_the_cluster_holds(cpu, gpu, cluster, expected):
    assert slots(SimpleNamespace(cpu=cpu, gpu=gpu), cluster) == expected


def test_relative_sqlite_uri_is_made_absolute_for_workers_and_the_ui(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert tracking_uri("http://host:5000") == "http://host:5000"
