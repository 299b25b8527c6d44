"""`retrain`: the spec's one config, built as a trial builds it, trained on train+validation,
tested once, logged to MLflow (a real SQLite store) and saved with its card; stopped early, it
leaves nothing that claims to be final."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from resnet_core.config import TrainConfig, resolved
from resnet_core.data.datasets import load_data
from resnet_core.models import build_model
from search.spec.model import load_spec
from search.spec.problems import SpecError
from search.winner.card import CARD_JSON, CARD_MD, MODEL_FILE
from search.winner.mlflow_run import link_tags, run_links
from search.winner.retrain import existing, note, plan_of, retrain, save, verified

SOURCE = {"experiment": "digits-search", "directory": "/w/runs/digits-search",
          "trial_id": "t002", "epochs": 2, "checkpoint": "/w/runs/digits-search/t002/c",
          "objective": {"metric": "val_acc", "mode": "max", "value": 0.86},
          "spec_hash": "abc", "mlflow": {"experiment": "digits-search", "parent_run_id": "p1"}}


def one_trial(**changes) -> dict:
    """A tiny one-trial spec (synthetic 16x16 images: an epoch takes well under a second)."""
    spec = {"name": "tiny-best",
            "data": {"dataset": "synthetic", "synthetic_size": 256, "image_size": 16,
                     "root": "data"},
            "budget": {"trials": 1, "max_epochs": 2},
            "trial": {"resources": {"cpu": 1}},
            "scheduler": {"type": "fifo"},
            "fixed": {"depth": 20, "width": 0.25, "batch_size": 64, "eval_batch_size": 128,
                      "lr": 0.05, "precise_bn": 64},
            "tracking": {"mlflow_uri": "sqlite:///mlflow.db", "experiment": "tiny-search"},
            "storage_path": "runs"}
    spec.update(changes)
    return spec


def spec_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "specs" / "best.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(one_trial(**changes), sort_keys=False))
    return path


# ---- the plan: what would be trained --------------------------------------------------------

def test_the_plan_is_the_trials_config_with_the_budgets_epochs(tmp_path):
    spec = load_spec(spec_file(tmp_path))
    plan = plan_of(spec, SOURCE)
    assert plan.config == spec.job().train_config({})
    assert (plan.config.epochs, plan.config.lr, plan.config.batch_size) == (2, 0.05, 64)
    assert plan.data.root == str(tmp_path / "specs" / "data")  # relative to the spec file
    assert plan.tracking_uri == f"sqlite:///{tmp_path / 'specs' / 'mlflow.db'}"
    assert plan.mlflow_experiment == "tiny-search" and plan.threads == 1
    assert plan.run_name == "retrain t002" and plan.source == SOURCE
    assert plan.spec_hash == spec.spec_hash()


def test_epochs_override_the_budget_and_are_validated_like_it(tmp_path):
    path = spec_file(tmp_path)
    assert plan_of(load_spec(path, max_epochs=7)).config.epochs == 7
    with pytest.raises(SpecError, match="budget.max_epochs"):
        load_spec(path, max_epochs=0)


def test_without_provenance_the_spec_names_the_run(tmp_path):
    spec = load_spec(spec_file(tmp_path, tracking={"mlflow_uri": "sqlite:///m.db"},
                               trial={"resources": {"cpu": 3}}))
    plan = plan_of(spec)
    assert plan.run_name == "retrain tiny-best" and plan.mlflow_experiment == "tiny-best"
    assert plan.threads == 3


def test_a_spec_that_still_searches_is_refused_naming_its_parameters(tmp_path):
    spec = load_spec(spec_file(tmp_path, budget={"trials": 4, "max_epochs": 2},
                               space={"momentum": {"float": [0.5, 0.9]},
                                      "augment": {"float": [0, 1]}}))
    with pytest.raises(SpecError) as caught:
        plan_of(spec)
    assert len(caught.value.problems) == 1
    assert ("space has 2 parameter(s) (augment, momentum) but retrain trains one configuration; "
            "export a search's winner with `resnet-search export-best") in str(caught.value)


@pytest.mark.parametrize("source,trial_run,expected", [
    (None, "", {}),
    (SOURCE, "r9", {"retrain_of.experiment": "digits-search",
                    "retrain_of.directory": "/w/runs/digits-search",
                    "retrain_of.trial_id": "t002", "retrain_of.parent_run_id": "p1",
                    "retrain_of.trial_run_id": "r9",
                    "retrain_of.checkpoint": "/w/runs/digits-search/t002/c",
                    "retrain_of.spec_hash": "abc", "retrain_of.val_acc": "0.86"}),
    # a trial run MLflow never got, no checkpoint: those tags are left out, not empty
    ({**SOURCE, "checkpoint": None, "objective": {"metric": "val_loss", "value": 0.1}}, "",
     {"retrain_of.experiment": "digits-search", "retrain_of.directory": "/w/runs/digits-search",
      "retrain_of.trial_id": "t002", "retrain_of.parent_run_id": "p1",
      "retrain_of.spec_hash": "abc", "retrain_of.val_loss": "0.1"}),
])
def test_link_tags(source, trial_run, expected):
    assert link_tags(source, trial_run) == expected


ML = "workflowType=machine_learning"


@pytest.mark.parametrize("server, trial_run, expected", [
    # a tracking server: absolute links, in MLflow's model-training view (not GenAI's pages)
    ("https://mlflow.example.org", "r9", {
        "run": f"https://mlflow.example.org/#/experiments/4/runs/r1?{ML}",
        "winner_run": f"https://mlflow.example.org/#/experiments/4/runs/r9?{ML}",
        "compare": "https://mlflow.example.org/#/compare-runs?runs=[%22r9%22,%22r1%22]"
                   f"&experiments=[%224%22]&{ML}"}),
    # the run's description inside MLflow: fragments; no trial run found, no link to it
    ("", "", {"run": f"#/experiments/4/runs/r1?{ML}"}),
])
def test_run_links(server, trial_run, expected):
    assert run_links(server, "4", "r1", trial_run) == expected


def test_the_runs_description_links_the_winning_trial_and_the_comparison():
    card = {"name": "x retrained", "metrics": {"epochs": 2, "test_acc": 0.9, "test_loss": 0.3},
            "source": SOURCE, "data": {"test_examples": 10}}
    text = note(card, run_links("", "4", "r1", "r9"))
    assert text.endswith(f" [The winning trial's run](#/experiments/4/runs/r9?{ML}); "
                         f"[compared with this run](#/compare-runs?runs=[%22r9%22,%22r1%22]"
                         f"&experiments=[%224%22]&{ML}).")
    assert "](" not in note(card, run_links("", "4", "r1", ""))


def test_a_checkpoint_the_header_names_is_verified_and_a_missing_one_marked(tmp_path):
    checkpoint = tmp_path / "t002" / "checkpoint_000001"
    checkpoint.mkdir(parents=True)
    there, warning = verified({**SOURCE, "checkpoint": str(checkpoint)})
    assert there["checkpoint_verified"] is True and warning is None
    gone = str(tmp_path / "t002" / "checkpoint_000009")
    marked, warning = verified({**SOURCE, "checkpoint": gone})
    assert marked == {**SOURCE, "checkpoint": gone, "checkpoint_verified": False}
    assert warning.startswith(f"warning: the checkpoint its provenance header names does not "
                              f"exist: {gone}; ") and "t002 of 'digits-search'" in warning
    assert link_tags(marked, "")["retrain_of.checkpoint_verified"] == "false"
    assert link_tags(there, "")["retrain_of.checkpoint_verified"] == "true"
    # A store that cannot be asked (no credentials) is no evidence either.
    assert verified(SOURCE, exists=lambda path: 1 / 0)[0]["checkpoint_verified"] is False
    # Nothing named, nothing to verify: no provenance, or an export without a checkpoint.
    assert verified(None) == (None, None)
    assert verified({**SOURCE, "checkpoint": None}) == ({**SOURCE, "checkpoint": None}, None)


# ---- saving: weights, then the card ---------------------------------------------------------

def tiny_model() -> torch.nn.Module:
    return build_model(TrainConfig(depth=20, width=0.25), num_classes=10)


def test_save_writes_a_plain_state_dict_and_the_card(tmp_path):
    model = tiny_model()
    card = {"name": "x", "created_at": "now", "metrics": {"test_acc": 0.5, "test_loss": 1.0},
            "data": {"dataset": "synthetic", "test_examples": 9}, "config": {"epochs": 2},
            "versions": {}, "hardware": {}, "mlflow": {}}
    save(tmp_path / "out", model.state_dict(), card, torch.save)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [MODEL_FILE, CARD_MD, CARD_JSON])
    again = tiny_model()
    again.load_state_dict(torch.load(tmp_path / "out" / MODEL_FILE, weights_only=True))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values()))
    assert json.loads((tmp_path / "out" / CARD_JSON).read_text()) == card
    assert existing(tmp_path / "out") == [MODEL_FILE, CARD_JSON, CARD_MD]
    assert existing(tmp_path / "nothing-here") == []


def test_a_save_that_fails_leaves_no_card_describing_other_weights(tmp_path):
    out = tmp_path / "out"
    card = {"name": "old", "created_at": "then", "metrics": {"test_acc": 0.1, "test_loss": 2.0},
            "data": {"dataset": "synthetic", "test_examples": 9}, "config": {"epochs": 1},
            "versions": {}, "hardware": {}, "mlflow": {}}
    save(out, tiny_model().state_dict(), card, torch.save)

    def full_disk(obj, path):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        save(out, tiny_model().state_dict(), {**card, "name": "new"}, full_disk)
    # the old weights are whole, and no card claims the new ones
    assert sorted(p.name for p in out.iterdir()) == [MODEL_FILE]
    tiny_model().load_state_dict(torch.load(out / MODEL_FILE, weights_only=True))


# ---- a real retrain: torch, a real MLflow SQLite store --------------------------------------

@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # retrain sets the trial's CPUs


def runs_of(plan) -> list:
    client = MlflowClient(plan.tracking_uri)
    experiment = client.get_experiment_by_name(plan.mlflow_experiment)
    return client.search_runs([experiment.experiment_id])


def test_retrain_trains_on_train_and_validation_tests_once_and_keeps_it(tmp_path, threads):
    # The spec's store does not exist yet: MLflow creates it as a user's first retrain does.
    plan = plan_of(load_spec(spec_file(tmp_path)), SOURCE)
    seen: list[dict] = []
    done = retrain(plan, tmp_path / "model", on_epoch=seen.append)
    assert [m["epoch"] for m in seen] == [1, 2] and "val_acc" not in seen[-1]
    data, held = load_data(plan.data, validation=False), load_data(plan.data)
    card = json.loads((tmp_path / "model" / CARD_JSON).read_text())
    assert card == json.loads(json.dumps(done.card))
    assert card["data"]["train_examples"] == len(held.train_y) + len(held.val_y)
    assert card["data"]["test_examples"] == len(held.test_y)
    assert card["data"]["in_channels"] == 3 and card["data"]["image_size"] == [16, 16]
    assert card["config"] == resolved(plan.config) and card["source"] == SOURCE
    assert set(card["versions"]) == {"resnet-search", "torch", "torchvision", "numpy", "python"}
    assert card["hardware"]["torch_threads"] == 1
    # the weights are the tested model: reloaded into a fresh trainer, the same test score
    from resnet_core.train import Trainer

    again = Trainer(plan.config, data, device="cpu")
    again.model.load_state_dict(torch.load(tmp_path / "model" / MODEL_FILE, weights_only=True))
    assert again.test() == {"test_loss": card["metrics"]["test_loss"],
                            "test_acc": card["metrics"]["test_acc"]}
    [run] = runs_of(plan)
    assert run.info.run_id == done.run_id == card["mlflow"]["run_id"]
    assert run.info.status == "FINISHED" and run.info.run_name == "retrain t002"
    assert run.data.metrics["test_acc"] == card["metrics"]["test_acc"]
    assert run.data.tags["retrain_of.parent_run_id"] == "p1"
    assert run.data.tags["model_dir"] == str((tmp_path / "model").resolve())
    assert run.data.params["lr"] == "0.05" and run.data.params["data.dataset"] == "synthetic"
    history = MlflowClient(plan.tracking_uri).get_metric_history(run.info.run_id, "train_loss")
    assert [p.step for p in history] == [1, 2]
    assert [p.value for p in history] == [m["train_loss"] for m in seen]
    # The per-epoch rate has the name the search's trials give it: `lr` is the config's rate.
    client = MlflowClient(plan.tracking_uri)
    assert [p.step for p in client.get_metric_history(run.info.run_id, "lr_last_step")] == [1, 2]
    assert "lr" not in run.data.metrics
    assert done.tracked


def test_a_retrain_stopped_early_saves_nothing_and_closes_its_run_killed(tmp_path, threads,
                                                                         fresh_mlflow):
    plan = plan_of(load_spec(spec_file(tmp_path)), SOURCE)
    fresh_mlflow(tmp_path / "specs" / "mlflow.db")  # the spec's store, empty: no experiment yet

    def ctrl_c(metrics: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retrain(plan, tmp_path / "model", on_epoch=ctrl_c)
    assert not (tmp_path / "model").exists()
    [run] = runs_of(plan)
    assert run.info.status == "KILLED"
    assert (run.data.tags["state"], run.data.tags["reason"]) == ("interrupted", "interrupted")
