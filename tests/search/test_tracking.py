"""The MLflow mirror's guards: nothing it does may hold up or fail a search."""

import threading
import time

from search.tracking import error_reason, probe, within


def test_within_returns_none_on_success():
    assert within(5, lambda: None) is None


def test_within_reports_an_error_instead_of_raising():
    def boom():
        raise ConnectionError("refused")

    assert within(5, boom) == "ConnectionError: refused"


def test_within_gives_up_at_its_deadline():
    release = threading.Event()
    start = time.monotonic()
    assert within(0.3, release.wait) == "no answer within 0 s"
    assert time.monotonic() - start < 2
    release.set()


def test_probe_of_a_dead_server_answers_in_seconds(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    start = time.monotonic()
    assert probe("http://127.0.0.1:9", timeout_s=10) is not None
    assert time.monotonic() - start < 12


def test_sqlite_store_probes_clean(tmp_path):
    assert probe(f"sqlite:///{tmp_path / 'm.db'}") is None


def test_error_reason_without_an_error_file_points_to_ray():
    class Trial:
        pickled_error_file = None

    assert "error.txt" in error_reason(Trial())
