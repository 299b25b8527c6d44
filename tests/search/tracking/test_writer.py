"""The writer: retries a failing MLflow action with back-off, drops it at its deadline, keeps
order, and never makes its caller wait."""

from __future__ import annotations

import logging
import pickle
import threading
import time

import pytest
from mlflow_template import copy_template

from search.tracking.writer import Writer


# How long a test lets queued calls take: only a hang fails it, however busy the machine (the
# first call of a writer opens the SQLite store, seconds under load).
END_S = 300


@pytest.fixture(scope="module")
def uri(tmp_path_factory, mlflow_template) -> str:
    return copy_template(mlflow_template, tmp_path_factory.mktemp("writer") / "m.db")


def failing(times: int, log: list, name: str = "x"):
    """An action that raises `times` times, then records `name` in `log`."""
    calls = {"n": 0}

    def action(client) -> None:
        calls["n"] += 1
        if calls["n"] <= times:
            raise ConnectionError(f"refused\nsecond line of {name}")
        log.append(name)

    return action


def test_an_action_failing_twice_is_retried_and_succeeds(uri):
    writer, done = Writer(uri, deadline_s=30, backoff_s=0.01), []
    writer.submit(failing(2, done))
    assert writer.flush(END_S)
    assert done == ["x"]
    assert (writer.failures, writer.retries) == (0, 2)


def test_an_action_failing_past_its_deadline_is_dropped_with_one_warning_line(uri, caplog):
    writer, done = Writer(uri, deadline_s=0.3, backoff_s=0.05), []
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="resnet_search.tracking"):
        writer.submit(failing(1000, done, "dropped"))
        writer.submit(failing(0, done, "next"))  # the queue goes on after a drop
        assert writer.flush(END_S)
    assert done == ["next"]
    assert writer.failures == 1
    assert time.monotonic() - start >= 0.3  # dropped at its deadline, not before
    assert writer.retries >= 3  # 0.05, 0.1, then the last attempt at the deadline
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].exc_info is None and "\n" not in warnings[0].getMessage()
    assert "ConnectionError: refused" in warnings[0].getMessage()


def test_order_is_kept_across_retries(uri):
    writer, done = Writer(uri, deadline_s=30, backoff_s=0.01), []
    for i in range(30):
        writer.submit(failing(1 if i % 5 == 0 else 0, done, str(i)))
    assert writer.flush(END_S)
    assert done == [str(i) for i in range(30)]
    assert (writer.failures, writer.retries) == (0, 6)


def test_submit_never_waits_and_flush_is_bounded(uri):
    writer, release = Writer(uri, deadline_s=30), threading.Event()
    writer.submit(lambda client: release.wait())  # a store that does not answer, until released
    # The writer's thread is stuck in that call: a submit that waited for it would never return.
    for _ in range(100):
        writer.submit(lambda client: None)
    assert writer.flush(0.2) is False  # bounded: it returns while the call is still stuck
    release.set()
    assert writer.flush(END_S) is True
    assert writer.failures == 0


def test_a_pickled_writer_keeps_its_settings_and_counts_but_no_thread(uri):
    writer = Writer(uri, deadline_s=7)
    writer.submit(failing(1000, [], "dropped"))
    writer.deadline_s = 0.1  # read at each failure: drop it soon
    assert writer.flush(END_S)
    copy = pickle.loads(pickle.dumps(writer))
    assert (copy.uri, copy.deadline_s, copy.failures) == (uri, 0.1, 1)
    assert copy.flush(1)  # nothing queued on the copy: a fresh thread starts on its first submit
    done = []
    copy.submit(failing(0, done))
    assert copy.flush(30) and done == ["x"] and copy.failures == 1


def test_a_note_runs_on_the_writers_thread_in_order_once_whatever_mlflow_does(tmp_path):
    """Bookkeeping queued with `note` (the book of runs' own state) runs after the actions queued
    before it, on the writer's thread, once: neither retried nor dropped, also when no MLflow
    client can be made (a store in a directory that cannot exist: under a file)."""
    (tmp_path / "file").write_text("")
    writer, done = Writer(f"sqlite:///{tmp_path / 'file' / 'm.db'}", deadline_s=0.2,
                          backoff_s=0.05), []
    writer.submit(failing(0, done, "action"))  # dropped: the client cannot be made
    writer.note(lambda: done.append(threading.current_thread().name))
    writer.note(lambda: 1 / 0)  # a bug in one note leaves the next to run
    writer.note(lambda: done.append("after"))
    assert writer.flush(30)
    assert done == ["mlflow-writer", "after"]
    assert (writer.failures, writer.retries > 0) == (1, True)
