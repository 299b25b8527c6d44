"""A search warm-started through the real CLI from a finished one (real Ray, real MLflow server,
real digits): `--warm-from` names the earlier experiment's directory, the spec queues the
earlier best's configuration, asks for the earlier 2 best completed ones to be queued after it
(`queue_best`, the best itself only once) and narrows the space to the box of the earlier 6
best trials. The new search starts knowing what the earlier one learnt: its
searcher's study (as Ray saved it, what a resume restores) holds the earlier trials with their
values before its own, the queued best is its first trial, and the record, the MLflow parent and
`validate` say where the knowledge came from."""

from __future__ import annotations

import json
import pickle

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import run_cli

NAME = "e2e-warm"


def searcher_study(experiment):
    """The Optuna study inside the searcher state Ray saved for the experiment."""
    [saved] = sorted((experiment / "ray").glob("searcher-state-*.pkl"))[-1:]
    with open(saved, "rb") as handle:
        state = pickle.load(handle)
    return found_study(state)


def found_study(obj, depth: int = 0):
    """Ray nests the searcher (the generator, a concurrency limiter, OptunaSearch): the first
    `_ot_study` found, breadth first."""
    import optuna

    if isinstance(obj, optuna.Study):
        return obj
    if depth > 6:
        return None
    items = obj.values() if isinstance(obj, dict) else vars(obj).values() \
        if hasattr(obj, "__dict__") else obj if isinstance(obj, (list, tuple)) else []
    for value in items:
        study = found_study(value, depth + 1)
        if study is not None:
            return study
    return None


def inside(params: dict, box: list[dict]) -> bool:
    """Whether every parameter lies within what the `box` configurations took: a choice among
    their values, a number between their least and greatest."""
    for name, value in params.items():
        values = [p[name] for p in box if name in p]
        if isinstance(value, str) and value not in values:
            return False
        if not isinstance(value, str) and not min(values) <= value <= max(values):
            return False
    return True


def test_a_warm_started_search_starts_with_the_earlier_knowledge(finished, tmp_path):
    earlier = json.loads(run_cli("trials", str(finished.experiment), "--json",
                                 cwd=finished.home).stdout)
    best = earlier["trials"][0]
    spec = {**finished.spec, "name": NAME, "budget": {"trials": 2, "max_epochs": 3},
            "storage_path": str(tmp_path / "runs"),
            "warm_start": {"top": 6, "narrow": 6, "enqueue": [best["params"]],
                           "queue_best": 2}}
    path = tmp_path / "warm.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))

    checked = run_cli("validate", str(path), "--warm-from", str(finished.experiment),
                      cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr[-2000:]
    said = next(line for line in checked.stdout.splitlines() if line.startswith("warm start:"))
    assert said.startswith("warm start: told 6 of 8 earlier trials (")
    six = [t["params"] for t in earlier["trials"][:6]]
    # queue_best: the 2 best completed configurations inside the box, less the one enqueued
    completed = [t["params"] for t in earlier["trials"] if t["outcome"] == "completed"
                 and inside(t["params"], six)][:2]
    again = [p for p in completed if p != best["params"]]
    assert again, "the finished search has a second completed trial to queue"
    assert f"from {finished.experiment}" in said
    assert (f"{1 + len(again)} configurations queued first ({len(again)} earlier best)"
            in said)
    assert "space narrowed to the 6 best of each" in said
    assert ("warm start: space narrowed to the bounding box of the 6 best trials of each "
            "earlier experiment (6 trials and 1 queued configuration):") in checked.stdout

    launch = run_cli("launch", str(path), "--warm-from", str(finished.experiment), cwd=tmp_path)
    assert launch.returncode == 0, launch.stdout[-3000:] + launch.stderr[-3000:]
    assert said in launch.stderr  # the same line, before the search starts

    experiment = tmp_path / "runs" / NAME
    state = json.loads((experiment / "resnet_search.json").read_text())
    assert state["warm_start"]["from"] == [str(finished.experiment)]
    assert (state["warm_start"]["told"], state["warm_start"]["of"]) == (6, 8)
    assert state["warm_start"]["text"] == said
    assert state["warm_start"]["narrowed"]["trials"] == 6
    assert state["warm_start"]["queued_best"] == [str(finished.experiment)] * len(again)

    # The searcher's study: the 6 earlier trials first, with their values, then the new ones.
    study = searcher_study(experiment)
    trials = study.get_trials(deepcopy=False)
    told = [t for t in trials if t.user_attrs.get("warm_start") == str(finished.experiment)
            and "trial_id" in t.user_attrs]  # told, not queued: an earlier trial's id
    assert [t.number for t in told] == list(range(6))
    by_id = {t.user_attrs["trial_id"]: t for t in told}
    assert best["trial_id"] in by_id
    assert by_id[best["trial_id"]].value == pytest.approx(best["curve"][-1][1])
    # The queued best configuration was the first trial the new search trained.
    assert trials[6].user_attrs.get("warm_start") == "enqueue"
    # ... and the earlier best completed one queued after it the second, named by its source
    assert trials[7].user_attrs.get("warm_start") == str(finished.experiment)
    new = json.loads(run_cli("trials", str(experiment), "--json", cwd=tmp_path).stdout)
    assert len(new["trials"]) == 2
    assert sorted(map(json.dumps, (t["params"] for t in new["trials"]))) == sorted(
        map(json.dumps, [best["params"], again[0]]))
    # every trial the narrowed search proposed lies in the box of the earlier 6 best
    for trial in new["trials"]:
        assert inside(trial["params"], six), trial["params"]

    client = MlflowClient(finished.server_url)
    [parent] = client.search_runs(
        [client.get_experiment_by_name(NAME).experiment_id],
        filter_string=f"tags.mlflow.runName = '{NAME}'")
    assert parent.data.tags["warm_start.from"] == str(finished.experiment)
    assert (parent.data.tags["warm_start.told"], parent.data.tags["warm_start.of"]) == ("6", "8")
    assert parent.data.tags["warm_start"] == said
    assert parent.data.tags["warm_start.narrowed"].startswith("lr: float [0.02, 0.5] log -> ")

    again = run_cli("validate", str(path), "--warm-from", str(finished.experiment), cwd=tmp_path)
    assert again.returncode == 0 and f"it was warm-started: {said}" in again.stdout
