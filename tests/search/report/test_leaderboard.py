"""The leaderboard: every trial best first, every sampled parameter in a column of its own."""

from __future__ import annotations

import csv
import math

from search.report.leaderboard import param_names, rows, write_csv


def test_rows_rank_every_trial_best_first_with_its_best_and_final_values(record, planned):
    results = record().recorded_results()
    table = rows(results)
    assert [r["trial_id"] for r in table] == [t.trial_id for t in results.trials]
    assert [r["rank"] for r in table] == list(range(1, len(planned) + 1))
    best = {p.trial_id: max((v for v in p.values if not math.isnan(v)), default=None)
            for p in planned}
    final = {p.trial_id: p.values[-1] if p.values and not math.isnan(p.values[-1]) else None
             for p in planned}
    for row in table:
        assert row["best_val_acc"] == best[row["trial_id"]]
        assert row["final_val_acc"] == final[row["trial_id"]]
    assert table[0]["trial_id"] == "t-best" and table[0]["outcome"] == "completed"


def test_a_conditional_parameter_is_empty_where_its_condition_did_not_hold(record):
    results = record().recorded_results()
    assert param_names(results) == ["lr", "weight_decay", "residual", "residual_scale"]
    by_id = {r["trial_id"]: r for r in rows(results)}
    assert by_id["t-best"]["residual_scale"] is None
    assert by_id["t-second"]["residual_scale"] == 0.5


def test_the_csv_holds_one_row_per_trial(record, tmp_path):
    results = record().recorded_results()
    path = write_csv(results, tmp_path / "leaderboard.csv")
    with open(path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == len(results.trials)
    assert read[0]["trial_id"] == results.trials[0].trial_id
    assert float(read[0]["best_val_acc"]) == results.trials[0].best
    assert read[0]["residual_scale"] == ""  # t-best added, no scale


def test_an_experiment_without_trials_has_a_header_only_csv(record, tmp_path):
    results = record([]).recorded_results()
    path = write_csv(results, tmp_path / "leaderboard.csv")
    assert path.read_text().splitlines() == [
        "rank,trial_id,best_val_acc,final_val_acc,epochs,outcome"]
