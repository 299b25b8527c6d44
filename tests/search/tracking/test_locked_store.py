"""A locked SQLite store (another process holds its write lock): training never waits, writes
that outlive their deadline are dropped and counted, and reconcile leaves every epoch of every
trial in MLflow exactly once."""

from __future__ import annotations

import logging
import math
import sqlite3
import time


def test_a_locked_store_never_blocks_training_and_reconcile_fills_the_gaps(
        store, make_mirror, make_trial, make_epoch, caplog):
    mirror = make_mirror(deadline_s=1.0)
    a, b = make_trial("a", 0.1), make_trial("b", 0.2)
    results = {"a": [make_epoch(n) for n in (1, 2, 3, 4)],
               "b": [make_epoch(n, val_loss=math.nan if n == 2 else 0.5) for n in (1, 2, 3)]}
    mirror.on_trial_start(0, [a], a)
    mirror.on_trial_result(0, [a], a, results["a"][0])
    assert mirror.flush(30)  # a's run and its first epoch are in

    lock = sqlite3.connect(store.db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="resnet_search.tracking"):
            start = time.monotonic()
            for row in results["a"][1:]:
                mirror.on_trial_result(0, [a, b], a, row)
            mirror.on_trial_start(0, [a, b], b)
            for row in results["b"]:
                mirror.on_trial_result(0, [a, b], b, row)
            fed = time.monotonic() - start
            # The first write (a's epoch 2) waits out SQLite's busy timeout (20 s, set by
            # MLflow): past its 1 s deadline it is dropped. Release the lock then, while the
            # next write waits: it goes through, and so does everything behind it.
            deadline = time.monotonic() + 60
            while mirror.failures < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert fed < 0.1, "the mirror made training wait for a locked store"
    assert mirror.flush(60)
    assert mirror.failures == 1
    assert store.steps(mirror.runs["a"], "val_acc") == [1, 3, 4]  # epoch 2 was lost

    with caplog.at_level(logging.WARNING, logger="resnet_search.tracking"):
        mirror.reconcile(results)
        assert mirror.flush(60)
    store.assert_complete(results)  # b's NaN val_loss of epoch 2 stays out, as live
    assert mirror.backfilled == 3  # a's epoch 2: val_acc, train_loss, lr
    assert mirror.failures == 1
    dropped = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(dropped) == 1 and "database is locked" in dropped[0].getMessage()
