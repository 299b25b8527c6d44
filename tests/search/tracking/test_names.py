"""What a trial's MLflow run shows people (pure rules): its name, its sampled numbers as `hp.*`
metrics, the params it logs, the parent run's description and the UI's address."""

from __future__ import annotations

import json
import math

import pytest

from search.tracking import describe, view
from search.tracking.names import (HP_PREFIX, hp_metrics, logged_params, number_of, numeric,
                                   run_name)
from search.tracking.points import METRICS, mlflow_key, points
from search.tracking.ui import runs_view_url, server_address


@pytest.mark.parametrize("number, sampled, name", [
    (7, {"block": "basic", "residual": "add", "schedule": "cosine"}, "t007 basic/add/cosine"),
    # numbers are metrics, not words; words go by parameter name (residual, schedule)
    (1, {"lr": 0.031, "schedule": "onecycle", "depth": 56, "residual": "scaled"},
     "t001 scaled/onecycle"),
    (12, {"lr": 0.1, "weight_decay": 1e-4}, "t012"),  # nothing categorical: the number alone
    (3, {"residual_learnable": True, "block": "preact"}, "t003 preact/residual_learnable=on"),
    (4, {"zero_init_residual": False}, "t004 zero_init_residual=off"),
    (5, {"milestones": [0.5, 0.75], "schedule": "multistep"}, "t005 multistep"),  # a list: no
    (6, {"pretrained": "/data/weights/r20-imagenet.pt", "block": "basic"},
     "t006 basic/r20-imagenet.pt"),  # a file: its name
    (1234, {"block": "dynamic"}, "t1234 dynamic"),  # past 999 the number grows
    # too long for the runs table: whole values while they fit in 40 characters, then "…"
    (9, {"block": "bottleneck", "residual": "normalized", "schedule": "exponential",
         "stem": "imagenet"}, "t009 bottleneck/normalized/exponential/…"),
    (9, {"block": "b" * 60}, "t009 …"),
])
def test_run_names(number, sampled, name):
    assert run_name(number, sampled) == name
    assert len(name) <= 40
    assert number_of(name) == number


@pytest.mark.parametrize("name, number", [
    ("t007 basic/add/cosine", 7), ("t012", 12), ("run_trial_ab12cd34", None), ("", None),
    (None, None), ("t12x", None), ("experiment", None),
])
def test_the_number_of_a_run_name(name, number):
    assert number_of(name) == number


def test_sampled_numbers_become_hp_metrics_at_step_0_and_nothing_else_does():
    sampled = {"lr": 0.31, "depth": 56, "schedule": "cosine", "residual_learnable": True,
               "milestones": [0.5, 0.75], "weight_decay": 6.2e-05, "gamma": math.nan}
    assert numeric(sampled) == {"lr": 0.31, "depth": 56.0, "weight_decay": 6.2e-05}
    found = {(m.key, m.value, m.step, m.timestamp) for m in hp_metrics(sampled, 1234)}
    assert found == {("hp.lr", 0.31, 0, 1234), ("hp.depth", 56.0, 0, 1234),
                     ("hp.weight_decay", 6.2e-05, 0, 1234)}
    assert HP_PREFIX == "hp."


@pytest.mark.parametrize("sampled, shown", [
    ({"residual": "add"}, {"lr", "residual", "epochs"}),  # residual_scale: not sampled, absent
    ({"residual": "scaled", "residual_scale": 0.5}, {"lr", "residual", "residual_scale",
                                                     "epochs"}),
])
def test_logged_params_leave_out_conditionals_the_trial_did_not_sample(sampled, shown):
    config = {"lr": 0.1, "residual": sampled["residual"], "residual_scale": 1.0, "epochs": 3,
              **sampled}
    assert set(logged_params(config, sampled, {"residual_scale"})) == shown


def test_every_metric_an_objective_may_name_is_logged_per_epoch_under_its_own_name():
    # the costs a trial reports (resnet_core/train/cost.py) among them, at step = epoch
    from search.spec.objective import METRICS as OBJECTIVES

    assert set(OBJECTIVES) <= set(METRICS)
    costs = {"params": 117, "flops": 768, "latency_ms": 0.25, "train_seconds": 3.5}
    logged = {(p.key, p.value, p.step) for p in points({"epoch": 2, "started_at": 1.0, **costs})}
    assert logged == {(k, float(v), 2) for k, v in costs.items()}


def test_no_mlflow_name_means_two_things():
    """`lr` is the config's learning rate (a param, and `hp.lr`); what an epoch reports is the
    rate of its last step, under another name. `epochs` (the budget) is a param only."""
    from search.tracking.names import EPOCHS_TAG

    logged = {p.key for p in points({"epoch": 2, **{k: 0.5 for k in METRICS}})}
    assert logged == {mlflow_key(k) for k in METRICS}
    assert "lr" not in logged and mlflow_key("lr") == "lr_last_step"
    assert not {k for k in logged if k.startswith(HP_PREFIX)}
    assert EPOCHS_TAG != "epochs"


@pytest.mark.parametrize("param, text", [
    ({"float": [0.01, 2.0], "log": True, "step": None, "when": {}},
     "float in [0.01, 2], log scale"),
    ({"float": [0.0, 1.0], "log": False, "step": None, "when": {"residual": ["scaled"]}},
     "float in [0, 1], when residual = scaled"),
    ({"int": [1, 9], "log": False, "step": 2, "when": {}}, "int in [1, 9], step 2"),
    ({"choice": ["step", "cosine"], "when": {"block": ["basic", "preact"]}},
     "one of step, cosine, when block = basic or preact"),
    ({"choice": [1e-05, 0.001], "when": {}}, "one of 1e-05, 0.001"),
])
def test_a_space_entry_described(param, text):
    assert describe.distribution(param) == text


SPEC = {"budget": {"trials": 8, "max_epochs": 3}, "data": {"dataset": "digits"},
        "objective": {"metric": "val_acc", "mode": "max"},
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 4},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2.0},
        "space": {"lr": {"float": [0.02, 0.5], "log": True, "step": None, "when": {}},
                  "residual": {"choice": ["add", "scaled"], "when": {}}}}


def test_the_parent_description_says_what_the_search_was_and_who_won():
    best = {"trial_id": "ab12cd34", "value": 0.94136, "params": {"lr": 0.1234, "residual": "add"}}
    winner = describe.winner_text("val_acc", best, "t005 add", "3")
    assert winner == ("t005 add (trial ab12cd34) with val_acc = 0.9414 after 3 epochs: "
                      "lr=0.1234, residual=add")
    text = describe.note("finished", SPEC, winner=winner)
    assert text.splitlines() == [
        "**Search finished**. 8 trials of at most 3 epochs, on digits, objective val_acc (max), "
        "sampler tpe (seed 0), scheduler asha (grace period 1, reduction factor 2).",
        "", f"**Best:** {winner}.",
        "", "**Space** (2 parameters):",
        "- `lr`: float in [0.02, 0.5], log scale", "- `residual`: one of add, scaled"]
    assert describe.note("aborted", {}, reason="3 trials failed") == (
        "**Search aborted** (3 trials failed).")
    assert describe.note("interrupted", {}, reason="interrupted") == "**Search interrupted**."
    assert describe.winner_text("val_loss", {"trial_id": "x", "value": 0.5, "params": {}}) == (
        "trial x with val_loss = 0.5")


@pytest.mark.parametrize("server, experiment, url", [
    ("http://127.0.0.1:5000", "3",
     "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"),
    ("https://mlflow.example.org/", "12",
     "https://mlflow.example.org/#/experiments/12/runs?workflowType=machine_learning"),
    # a server under a path prefix keeps it
    ("https://example.org/mlflow/", "1",
     "https://example.org/mlflow/#/experiments/1/runs?workflowType=machine_learning"),
    # credentials and tokens never reach a link
    ("http://ann:s3cret@10.0.0.5:5000/?token=abc", "2",
     "http://10.0.0.5:5000/#/experiments/2/runs?workflowType=machine_learning"),
    ("http://[::1]:5000", "4",
     "http://[::1]:5000/#/experiments/4/runs?workflowType=machine_learning"),
])
def test_the_runs_view_address(server, experiment, url):
    assert runs_view_url(server, experiment) == url


@pytest.mark.parametrize("server, where, url", [
    # the runs table, in a saved view
    ("http://h:5000", {"saved_view": "resnet-search"},
     "http://h:5000/#/experiments/7/runs?workflowType=machine_learning"
     "&viewStateShareKey=resnet-search"),
    # one run's page (the parent's winner, a model card's winning trial)
    ("https://example.org/mlflow/", {"run_id": "ab12"},
     "https://example.org/mlflow/#/experiments/7/runs/ab12?workflowType=machine_learning"),
    # the compare page of some runs (a saved view is for the runs table only)
    ("http://h:5000", {"compare": ["ab12", "cd34"], "saved_view": "x"},
     "http://h:5000/#/compare-runs?runs=[%22ab12%22,%22cd34%22]&experiments=[%227%22]"
     "&workflowType=machine_learning"),
    # no server: the fragment, for Markdown that MLflow's own pages render
    ("", {"run_id": "ab12"}, "#/experiments/7/runs/ab12?workflowType=machine_learning"),
])
def test_every_mlflow_link_opens_the_model_training_view(server, where, url):
    from search.tracking.links import mlflow_link

    assert mlflow_link(server, "7", **where) == url


def test_a_server_address_without_credentials():
    assert server_address("https://bob:pw@host:8443/base/?x=1#frag") == "https://host:8443/base"


def test_the_searchs_saved_view_shows_its_objective_and_sampled_parameters_best_first():
    spec = {**SPEC, "space": {**SPEC["space"],
                              "depth": {"choice": [20, 56], "when": {}},
                              "milestones": {"choice": [[0.5, 0.75], [0.3, 0.6]], "when": {}},
                              "zero_init_residual": {"choice": [True, False], "when": {}},
                              "residual_scale": {"float": [0.1, 1.0],
                                                 "when": {"residual": ["scaled"]}}}}
    table = view.state(spec)
    # the winner's mark first, beside the run's name; then the objective and the sampled values
    assert table["selectedColumns"] == [
        "tags.`best`", "metrics.`best_val_acc`", "metrics.`val_acc`", "metrics.`hp.lr`",
        "metrics.`hp.depth`", "metrics.`hp.residual_scale`", "params.`residual`",
        "params.`milestones`", "params.`zero_init_residual`", "tags.`outcome`",
        "tags.`epochs_trained`"]
    assert (table["orderByKey"], table["orderByAsc"]) == ("metrics.`best_val_acc`", False)
    # trials only: the parent run has no parent
    assert table["searchFilter"] == "tags.`mlflow.parentRunId` IS NOT NULL"
    # the charts: parallel coordinates ending on the objective (a conditional parameter left
    # out), the best objective per trial, and no chart of a single-valued hp.* number
    parallel, best, *hidden = table["compareRunCharts"]
    assert parallel["type"] == "PARALLEL" and not parallel["deleted"]
    assert parallel["selectedParams"] == ["residual", "milestones", "zero_init_residual"]
    assert parallel["selectedMetrics"] == ["hp.lr", "hp.depth", "best_val_acc"]
    assert parallel["runsCountToCompare"] == 8 and parallel["showAllRuns"]
    assert (best["type"], best["metricKey"], best["deleted"]) == ("BAR", "best_val_acc", False)
    assert {c["metricKey"]: c["deleted"] for c in hidden} == {
        "hp.lr": True, "hp.depth": True, "hp.residual_scale": True}
    sections = {c["metricSectionId"] for c in table["compareRunCharts"]}
    assert sections == {s["uuid"] for s in table["compareRunSections"]}
    assert len({c["uuid"] for c in table["compareRunCharts"]}) == len(table["compareRunCharts"])
    assert view.state({"objective": {"metric": "val_loss", "mode": "min"}})["orderByAsc"] is True
    # several objectives: sorted by the first, the others (and the front's tag) as columns
    several = view.state({**SPEC, "objective": [{"metric": "val_acc", "mode": "max"},
                                                {"metric": "params", "mode": "min"}]})
    assert several["selectedColumns"][:5] == [
        "tags.`best`", "metrics.`best_val_acc`", "metrics.`val_acc`", "metrics.`params`",
        "tags.`pareto`"]
    assert (several["orderByKey"], several["orderByAsc"]) == ("metrics.`best_val_acc`", False)
    saved = json.loads(view.tag_value(spec, 1234))
    assert (saved["name"], saved["createdAt"], saved["updatedAt"]) == (
        "trials, best val_acc first", 1234, 1234)
    assert json.loads(saved["state"]) == table
    assert view.TAG == "mlflow.sharedViewState.resnet-search"
    assert runs_view_url("http://h:1", "5", view.VIEW_ID) == (
        "http://h:1/#/experiments/5/runs?workflowType=machine_learning"
        "&viewStateShareKey=resnet-search")


def test_a_trials_best_objective_is_one_point_at_its_last_epoch():
    from search.tracking.points import best_point

    rows = [{"epoch": 1, "timestamp": 10, "val_acc": 0.5, "val_loss": 1.0},
            {"epoch": 2, "timestamp": 20, "val_acc": 0.8, "val_loss": math.nan},
            {"epoch": 3, "timestamp": 30, "val_acc": 0.7, "val_loss": 0.4},
            {"epoch": 2, "timestamp": 25, "val_acc": 0.6}]  # epoch 2 again: the later stands
    point = best_point(rows, "val_acc", "max")
    assert (point.key, point.value, point.step, point.timestamp) == ("best_val_acc", 0.7, 3,
                                                                     30_000)
    assert best_point(rows, "val_loss", "min").value == 0.4  # NaN never wins
    assert best_point([{"epoch": 1, "val_acc": math.nan}], "val_acc", "max") is None
    assert best_point([], "val_acc", "max") is None
    assert best_point(rows, "val_acc", "max") == point  # the same point every time
