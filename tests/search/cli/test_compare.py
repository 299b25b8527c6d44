"""`resnet-search compare EXP_A EXP_B` on two recorded searches (no Ray): each one's best,
trials and trial-epochs, which is better by how much, and only the config fields in which the
winners differ; the same as JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from search.cli import app
from warm_records import record, search_spec

# b's winner differs from a's (t2: lr 0.3, step) in lr and schedule, and is better by 0.05
B_TRIALS = {"u1": ({"lr": 0.05, "schedule": "cosine"}, [0.5, 0.95])}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_two_searches_side_by_side(tmp_path):
    a = record(tmp_path / "a", search_spec("search-a"))
    record(tmp_path / "b", search_spec("search-b"), trials=B_TRIALS)
    done = invoke("compare", str(a), str(tmp_path / "b" / "spec.yaml"))  # a directory, a spec
    assert done.exit_code == 0, done.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in done.output.splitlines() if line.count("│") >= 3}
    assert rows["trial-epochs"] == ["5 of 6", "2 of 6"]
    assert rows["trials"][0] == "3 ended of 3 (2 completed · 1 killed)"
    assert rows["best"][1].startswith("val_acc 0.9500 (trial u1, 2 epochs)")
    assert "better: 'search-b', by 0.0500 val_acc (2 trial-epochs against 5)" in done.output
    assert "the winners' configs differ in 2 fields" in done.output
    assert rows["lr"] == ["0.3", "0.05"] and rows["schedule"] == ["step", "cosine"]
    assert "depth" not in rows  # the fields both share are left out


def test_json(tmp_path):
    a = record(tmp_path / "a", search_spec("search-a"))
    b = record(tmp_path / "b", search_spec("search-b"), trials=B_TRIALS)
    done = invoke("compare", str(a), str(b), "--json")
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert [e["name"] for e in shown["experiments"]] == ["search-a", "search-b"]
    assert [e["epochs_used"] for e in shown["experiments"]] == [5, 2]
    assert [w["trial_id"] for w in shown["winners"]] == ["t2", "u1"]
    assert shown["winners"][0]["config"]["depth"] == 20
    assert shown["config_diff"] == {"lr": [0.3, 0.05], "schedule": ["step", "cosine"]}


def test_a_search_without_a_winner(tmp_path):
    a = record(tmp_path / "a", search_spec("same"))
    b = record(tmp_path / "b", search_spec("same"), trials={"v1": ({"lr": 0.1, "schedule":
                                                                    "step"}, [])})
    done = invoke("compare", str(a), str(b))
    assert done.exit_code == 0, done.output
    assert "A: same" in done.output and "B: same" in done.output  # told apart
    assert "not ranked: 'same' has no best yet" in done.output
    assert "no winners' configs to compare: 'same' has no trial with a finite val_acc" in \
        done.output
    assert json.loads(invoke("compare", str(a), str(b), "--json").output)["config_diff"] == {}
