"""MLflow readable by default, against a real SQLite store: trial runs named for people (also
across drivers), sampled numbers that sort and filter as numbers, no unsampled conditional
among a trial's params, the winner marked, and a parent run that shows the objective and says
what the search was."""

from __future__ import annotations

import json

from search.tracking import view
from search.tracking.store import (BEST_TAG, KIND, KIND_TAG, NOTE_TAG, children_query,
                                   open_parent, summarise_parent)
from search.tracking.ui import search_link

NAMES = {"a": dict(block="basic", residual="add"),
         "b": dict(block="preact", residual="scaled", residual_scale=0.5),
         "c": dict(block="basic", residual="normalized"),
         "d": dict(block="preact", residual="add"),
         "e": dict(block="basic", residual="scaled", residual_scale=0.25)}


def test_trials_are_numbered_in_start_order_and_keep_their_names_across_drivers(
        store, make_mirror, make_trial):
    """Driver 1 starts a and b, Tune snapshots, then c starts and the driver dies: no state
    records c's number. Driver 2 restores a and b (same runs, same names) and starts d, which
    must not take c's number; driver 3 carries the numbers on."""
    trials = {t: make_trial(t, 0.1, **sampled) for t, sampled in NAMES.items()}
    first = make_mirror()
    for t in "ab":
        first.on_trial_start(0, [], trials[t])
    assert first.flush(30)
    snapshot = first.get_state()
    first.on_trial_start(0, [], trials["c"])
    assert first.flush(30)

    second = make_mirror()
    second.set_state(snapshot)
    for t in "abd":
        second.on_trial_start(0, [], trials[t])
    second.on_experiment_end([trials[t] for t in "abd"])
    third = make_mirror()
    third.set_state(second.get_state())
    third.on_trial_start(0, [], trials["e"])
    assert third.flush(30)

    children = store.children()
    assert all(len(runs) == 1 for runs in children.values()), children
    assert {t: runs[0].info.run_name for t, runs in children.items()} == {
        "a": "t001 basic/add", "b": "t002 preact/scaled", "c": "t003 basic/normalized",
        "d": "t004 preact/add", "e": "t005 basic/scaled"}
    assert third.get_state()["numbers"] == {"a": 1, "b": 2, "d": 4, "e": 5}
    assert first.failures == second.failures == third.failures == 0


def test_sampled_numbers_sort_and_filter_as_numbers_and_unsampled_conditionals_are_absent(
        store, make_mirror, make_trial, make_epoch):
    lrs = {"a": 0.0011, "b": 6.2e-05, "c": 0.31, "d": 0.05}  # as text, 6.2e-05 sorts first
    trials = [make_trial(t, lr, **NAMES[t]) for t, lr in lrs.items()]
    mirror = make_mirror()
    for trial in trials:
        mirror.on_trial_start(0, trials, trial)
        mirror.on_trial_result(0, trials, trial, make_epoch(1))
    assert mirror.flush(30) and mirror.failures == 0

    experiment = store.client.get_run(store.parent).info.experiment_id
    query = children_query(store.parent)
    ordered = store.client.search_runs([experiment], query, order_by=["metrics.`hp.lr` DESC"])
    assert [run.data.tags["trial_id"] for run in ordered] == sorted(lrs, key=lrs.get,
                                                                    reverse=True)
    above = store.client.search_runs([experiment], f"{query} and metrics.`hp.lr` > 0.001")
    assert sorted(run.data.tags["trial_id"] for run in above) == ["a", "c", "d"]

    runs = {t: found[0] for t, found in store.children().items()}
    for t in "acd":  # residual add/normalized: residual_scale was never sampled
        assert "residual_scale" not in runs[t].data.params, runs[t].data.params
        assert "hp.residual_scale" not in runs[t].data.metrics
    assert runs["b"].data.params["residual_scale"] == "0.5"
    assert runs["b"].data.metrics["hp.residual_scale"] == 0.5
    a = runs["a"].data
    assert a.params["lr"] == "0.0011" and a.metrics["hp.lr"] == 0.0011
    assert a.params["depth"] == "20" and "hp.depth" not in a.metrics  # fixed: a param only
    assert {k for k in a.metrics if k.startswith("hp.")} == {"hp.lr"}  # no hp.block: a word
    assert a.metrics["lr_last_step"] == 0.1 and "lr" not in a.metrics
    assert [(p.step, p.value) for p in store.client.get_metric_history(
        runs["a"].info.run_id, "hp.lr")] == [(0, 0.0011)]


def test_reconcile_gives_each_trial_its_best_objective_once(store, make_mirror, make_trial,
                                                             make_epoch):
    """What the runs table sorts by: the best epoch's value, not the last one's; a launch
    reconciles at its end (and a resumed one again at its start): still one point."""
    rows = [make_epoch(1, val_acc=0.4), make_epoch(2, val_acc=0.9), make_epoch(3, val_acc=0.8)]
    for _ in range(2):
        mirror = make_mirror()
        mirror.reconcile({"a": rows}, configs={"a": {"lr": 0.1}})
        assert mirror.flush(30) and mirror.failures == 0
    run_id = store.children()["a"][0].info.run_id
    history = store.client.get_metric_history(run_id, "best_val_acc")
    assert [(p.step, p.value) for p in history] == [(3, 0.9)]
    assert store.client.get_run(run_id).data.metrics["val_acc"] == 0.8  # the last epoch's


SPEC = {"name": "exp", "data": {"dataset": "digits"},
        "objective": {"metric": "val_acc", "mode": "max"},
        "budget": {"trials": 4, "max_epochs": 6},
        "sampler": {"type": "tpe", "seed": 0}, "scheduler": {"type": "asha", "grace_period": 1,
                                                               "reduction_factor": 3.0},
        "space": {"residual": {"choice": ["add", "scaled"], "when": {}},
                  "residual_scale": {"float": [0.1, 1.0], "log": False, "step": None,
                                     "when": {"residual": ["scaled"]}}}}


def test_the_winner_is_marked_and_the_parent_shows_the_objective_and_the_search(
        store, make_mirror, make_trial, make_epoch):
    parent = open_parent(store.uri, "searched", "searched", tags={}, params={"trials": 4},
                         artifacts={"spec.json": json.dumps(SPEC)})
    client = store.client
    assert "**Search running**" in client.get_run(parent).data.tags[NOTE_TAG]
    experiment = client.get_run(parent).info.experiment_id
    tags = client.get_experiment(experiment).tags
    assert tags[KIND_TAG] == KIND
    assert json.loads(json.loads(tags[view.TAG])["state"]) == view.state(SPEC)
    assert search_link(store.uri, parent, server="http://127.0.0.1:5000") == (
        f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
        f"&viewStateShareKey={view.VIEW_ID}")
    # an experiment without the view (the store fixture's: no spec.json): no view in the link
    assert "viewStateShareKey" not in search_link(store.uri, store.parent, "http://h:1")

    mirror = make_mirror(parent=parent)
    trials = [make_trial(t, 0.1, **NAMES[t]) for t in "ab"]
    for trial in trials:
        mirror.on_trial_start(0, trials, trial)
        mirror.on_trial_result(0, trials, trial, make_epoch(1))
        mirror.on_trial_complete(0, trials, trial)
    assert mirror.flush(30) and mirror.failures == 0
    # The saved view's filter, as MLflow's search API runs it: the trials, not their parent.
    shown = client.search_runs([experiment], view.state(SPEC)["searchFilter"])
    assert sorted(run.info.run_id for run in shown) == sorted(mirror.runs.values())

    def best(trial_id: str, value: float) -> dict:
        return {"trial_id": trial_id, "run_id": mirror.runs[trial_id], "value": value,
                "params": dict(trials["ab".index(trial_id)].config), "config": {}}

    def marked() -> list[str]:
        return [run.data.tags["trial_id"] for run in client.search_runs(
            [experiment], children_query(parent, **{BEST_TAG: "true"}))]

    summarise_parent(store.uri, parent, metric="val_acc", best=best("a", 0.61),
                     state="interrupted", status="KILLED", reason="SIGINT")
    assert marked() == ["a"]
    run = client.get_run(parent)
    assert run.data.metrics["val_acc"] == run.data.metrics["best_val_acc"] == 0.61
    assert run.data.tags[NOTE_TAG].startswith("**Search interrupted** (SIGINT).")

    # A resumed launch ends with another winner: the mark moves, the parent follows.
    summarise_parent(store.uri, parent, metric="val_acc", best=best("b", 0.72),
                     state="finished", status="FINISHED")
    assert marked() == ["b"]
    run = client.get_run(parent)
    assert run.data.metrics["val_acc"] == run.data.metrics["best_val_acc"] == 0.72
    assert [p.value for p in client.get_metric_history(parent, "val_acc")] == [0.61, 0.72]
    note = run.data.tags[NOTE_TAG]
    assert note.startswith("**Search finished**. 4 trials of at most 6 epochs, on digits, "
                           "objective val_acc (max), sampler tpe (seed 0), scheduler asha "
                           "(grace period 1, reduction factor 3).")
    # The winner's name links to its run, in model-training mode, on whichever server shows it.
    assert (f"**Best:** [t002 preact/scaled](#/experiments/{experiment}/runs/{mirror.runs['b']}"
            "?workflowType=machine_learning) (trial b) with val_acc = 0.72 after 1 epoch: "
            "lr=0.1, block=preact, residual=scaled, residual_scale=0.5.") in note
    assert "- `residual_scale`: float in [0.1, 1], when residual = scaled" in note

    # The experiment's kind is set once: a kind someone chose later stays.
    client.set_experiment_tag(experiment, KIND_TAG, "genai_development")
    open_parent(store.uri, "searched", "again", tags={}, params={}, artifacts={})
    assert client.get_experiment(experiment).tags[KIND_TAG] == "genai_development"


def test_a_parent_without_its_spec_is_described_from_its_params(store):
    client = store.client
    client.log_param(store.parent, "trials", "3")
    client.log_param(store.parent, "max_epochs", "2")
    client.log_param(store.parent, "sampler", "random")
    summarise_parent(store.uri, store.parent, metric="val_acc", state="finished",
                     status="FINISHED", best={"trial_id": "x", "run_id": "", "value": 0.5,
                                              "params": {"lr": 0.1}})
    assert client.get_run(store.parent).data.tags[NOTE_TAG].splitlines() == [
        "**Search finished**. 3 trials of at most 2 epochs, sampler random.", "",
        "**Best:** trial x with val_acc = 0.5: lr=0.1."]
