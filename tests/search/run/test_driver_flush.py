"""At the end of a launch the mirror's last writes are waited for: a tracking server's within the
deadline, a local SQLite store's however long a busy machine makes them, said every 30 s
(search/run/driver.py: _flushed)."""

from __future__ import annotations

import logging

from search.run import driver


class SlowMirror:
    """A mirror whose queue drains after `rounds` flushes that time out."""

    def __init__(self, rounds: int) -> None:
        self.rounds, self.asked = rounds, []

    def flush(self, timeout_s):
        self.asked.append(timeout_s)
        return len(self.asked) > self.rounds


def test_a_local_store_is_waited_for_with_a_line_each_half_minute(caplog):
    mirror = SlowMirror(rounds=3)
    with caplog.at_level(logging.WARNING, logger="resnet_search.launch"):
        assert driver._flushed(mirror, "sqlite:///tmp/m.db") is True
    assert mirror.asked == [30.0] * 4
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3 and said[2].startswith(
        "waiting for the local MLflow store to take the search's last writes (1 min 30 s so far;")


def test_a_tracking_server_keeps_its_deadline():
    mirror = SlowMirror(rounds=1)
    assert driver._flushed(mirror, "http://mlflow:5000") is False
    assert mirror.asked == [driver.TRACKING_DEADLINE_S]
