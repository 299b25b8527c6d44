"""Back-fill: exactly the (metric, epoch) points MLflow lacks, with the values the live path logs
(so MLflow deduplicates a point that both write)."""

from __future__ import annotations

import math

from search.tracking.backfill import BATCH, backfill, missing
from search.tracking.points import METRICS, points


def test_missing_is_what_the_history_lacks_with_the_live_values(make_epoch):
    rows = [make_epoch(1), make_epoch(2, val_loss=math.nan), make_epoch(3, val_loss=0.7)]
    todo = missing(rows, {"val_acc": {1, 3}, "train_loss": {1, 2, 3}, "lr_last_step": {2}})
    assert sorted((m.key, m.step) for m in todo) == [
        ("lr_last_step", 1), ("lr_last_step", 3), ("val_acc", 2),
        ("val_loss", 3)]  # NaN left out, as live
    live = {(m.key, m.step): m for row in rows for m in points(row)}
    assert all(live[(m.key, m.step)] == m for m in todo)  # same key, value, timestamp, step
    assert next(m for m in todo if m.key == "val_acc").timestamp == 1_700_000_002_000


def test_an_epoch_reported_twice_counts_once_with_its_last_values(make_epoch):
    rows = [make_epoch(1), make_epoch(2, val_acc=0.1), make_epoch(2, val_acc=0.9)]
    todo = missing(rows, {}, metrics=("val_acc",))
    assert [(m.step, m.value) for m in todo] == [(1, 0.51), (2, 0.9)]


def test_a_result_without_a_timestamp_gets_timestamp_zero():
    assert [m.timestamp for m in points({"epoch": 1, "val_acc": 0.5})] == [0]


def test_backfill_writes_the_gaps_once_and_then_nothing(store, make_epoch):
    client = store.client
    experiment = client.get_run(store.parent).info.experiment_id
    run_id = client.create_run(experiment).info.run_id
    rows = [make_epoch(n) for n in range(1, 6)]
    client.log_batch(run_id, metrics=points(rows[0]) + points(rows[2]))  # the live path got 1, 3
    assert backfill(client, {"t": run_id}, {"t": rows}) == 3 * 3  # epochs 2, 4, 5 x 3 metrics
    assert backfill(client, {"t": run_id}, {"t": rows}) == 0
    for key in ("val_acc", "train_loss", "lr_last_step"):
        assert store.steps(run_id, key) == [1, 2, 3, 4, 5]
    # A late retry of a live write the back-fill already made is deduplicated by MLflow.
    client.log_batch(run_id, metrics=points(rows[3]))
    assert store.steps(run_id, "val_acc") == [1, 2, 3, 4, 5]


def test_backfill_splits_what_log_batch_cannot_take_at_once(store):
    client = store.client
    experiment = client.get_run(store.parent).info.experiment_id
    run_id = client.create_run(experiment).info.run_id
    rows = [{"epoch": n, **{k: float(n) for k in METRICS}} for n in range(1, 121)]
    assert len(METRICS) * len(rows) > BATCH
    assert backfill(client, {"t": run_id}, {"t": rows}) == len(METRICS) * len(rows)
    assert store.steps(run_id, "peak_mem_mb") == list(range(1, 121))
