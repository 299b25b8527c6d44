"""Ray's snapshot files as a killed driver leaves them: whole ones are kept, cut-short ones set
aside before a restore, read without unpickling anything."""

from __future__ import annotations

import json
import pickle

import pytest
import ray.cloudpickle as cloudpickle

from search.experiment.snapshot import SET_ASIDE, cut_short, damaged, set_aside_cut_short
from search.experiment.storage import object_path

# What Tune's snapshot pickles hold: nested state, bytes, floats (cloudpickle, as Tune writes).
STATE = {"searcher": {"trials": {f"t{i}": {"lr": 0.1 * i, "epochs": [1, 2, 3]} for i in range(40)},
                      "blob": bytes(range(256)) * 4},
         "callbacks": [{"runs": {"a": "r1"}}, None, {"stopped": ["b"]}]}
PICKLED = cloudpickle.dumps(STATE)
JSON = json.dumps({"trial_data": [["{}", "{}"]] * 20, "runner_data": {"x": 1}}).encode()


@pytest.mark.parametrize("name, data, expected", [
    ("searcher-state-a.pkl", PICKLED, False),
    ("searcher-state-a.pkl", pickle.dumps(STATE, protocol=2), False),
    ("callback-states-a.pkl", b"", True),
    ("experiment_state-a.json", JSON, False),
    ("experiment_state-a.json", JSON[:-1], True),
    ("experiment_state-a.json", b"", True),
    ("search_gen_state-a.json", PICKLED, False),  # Tune pickles it, despite its name
    ("search_gen_state-a.json", PICKLED[:-1], True),
])
def test_a_snapshot_file_is_whole_or_cut_short(name, data, expected):
    assert cut_short(name, data) is expected


@pytest.mark.parametrize("keep", [1, 2, 17, len(PICKLED) // 2, len(PICKLED) - 2,
                                  len(PICKLED) - 1])
def test_a_pickle_cut_anywhere_is_cut_short_and_nothing_is_unpickled(keep, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "loads", never)
    monkeypatch.setattr(pickle, "load", never)
    assert cut_short("callback-states-a.pkl", PICKLED[:keep])


def test_a_cut_short_callbacks_file_is_set_aside_until_a_whole_one_is_the_newest(tmp_path):
    ray = tmp_path / "ray"
    ray.mkdir()
    files = {"callback-states-2026-12-07_03-30-00.pkl": PICKLED,  # an earlier session's, whole
             "callback-states-2026-12-07_03-31-30.pkl": PICKLED[:-1],
             "callback-states-2026-12-07_03-32-10.pkl": b"",
             "searcher-state-2026-12-07_03-32-10.pkl": PICKLED,
             "tuner.pkl": PICKLED[:10]}  # not a snapshot file: written once, at the start
    for name, data in files.items():
        (ray / name).write_bytes(data)
    assert damaged(ray) == []  # what a restore cannot do without is whole
    assert set_aside_cut_short(ray) == ["callback-states-2026-12-07_03-32-10.pkl",
                                        "callback-states-2026-12-07_03-31-30.pkl"]
    assert sorted(p.name for p in ray.iterdir()) == sorted([
        "callback-states-2026-12-07_03-30-00.pkl",
        "callback-states-2026-12-07_03-31-30.pkl" + SET_ASIDE,
        "callback-states-2026-12-07_03-32-10.pkl" + SET_ASIDE,
        "searcher-state-2026-12-07_03-32-10.pkl", "tuner.pkl"])
    # nothing lost: the bytes are kept under the new name
    assert (ray / ("callback-states-2026-12-07_03-31-30.pkl" + SET_ASIDE)).read_bytes() == \
        PICKLED[:-1]
    assert set_aside_cut_short(ray) == []  # a second look finds nothing more


@pytest.mark.parametrize("name, data", [
    ("searcher-state-2026-12-07_03-32-10.pkl", PICKLED[:50]),
    ("search_gen_state-2026-12-07_03-32-10.json", PICKLED[:30]),  # a pickle, despite its name
    ("experiment_state-2026-12-07_03-32-10.json", b""),
])
def test_a_cut_short_searcher_or_experiment_state_is_damage_a_restore_cannot_skip(
        tmp_path, name, data):
    ray = tmp_path / "ray"
    ray.mkdir()
    stem = name.split("2026")[0]
    (ray / f"{stem}2026-12-07_03-30-00{name[-5:] if name.endswith('.json') else '.pkl'}"
     ).write_bytes(JSON if name.startswith("experiment") else PICKLED)  # an earlier one, whole
    (ray / name).write_bytes(data)
    assert damaged(ray) == [name]  # only the newest counts: Tune restores from it
    assert set_aside_cut_short(ray) == [] and (ray / name).read_bytes() == data  # untouched


def test_an_object_store_and_a_missing_folder_are_left_alone(tmp_path):
    assert set_aside_cut_short(tmp_path / "nothing") == []
    assert set_aside_cut_short(object_path("s3://bucket/runs/x/ray")) == []
