"""`export-best` and `retrain` on the shared finished digits search (tests/e2e/finished.py): the
real CLI in fresh processes, real torch training, the real MLflow server the search logged to.

The experiment's directory is only read. A retrain logs its own run into the search's MLflow
experiment (that is what links it to the search); the interrupted retrain logs into an
experiment of its own, so the search's experiment never holds a KILLED run from these tests.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from driving import cli_env, wait_for
from finished import NAME
from mlflow.tracking import MlflowClient

from resnet_core.config import DataConfig, TrainConfig
from resnet_core.data.datasets import load_data
from search.experiment.record import Experiment
from search.experiment.state import read_state
from search.spec.model import load_spec
from search.winner.header import read_provenance

# The issue asks that the retrained winner reach its validation accuracy within 2 points on the
# test split. At the shared search's 3 epochs digits models are far from converged and the same
# config's test accuracy spreads over 0.54-0.89 across seeds (15 seeds measured, 10 within 2
# points of a 0.69 winner); at 6 epochs it was 0.944-0.958 over 5 seeds. So the retrain here
# runs 6 epochs (`--epochs`, also what that option is for) and the comparison is with the
# winner's 3-epoch validation accuracy, which the retrain must reach.
EPOCHS = 6
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("winner")


@pytest.fixture(scope="module")
def winner(finished):
    return Experiment.open(finished.experiment).recorded_results().best


@pytest.fixture(scope="module")
def exported(finished, work, cli_module) -> subprocess.CompletedProcess:
    return cli_module("export-best", str(finished.spec_path), "-o", "out/best.yaml", cwd=work)


@pytest.fixture(scope="module")
def cli_module():
    from conftest import run_cli

    return run_cli


@pytest.fixture(scope="module")
def retrained(exported, work, cli_module) -> subprocess.CompletedProcess:
    assert exported.returncode == 0, exported.stdout + exported.stderr
    return cli_module("retrain", "out/best.yaml", "--epochs", str(EPOCHS), "-o", "model",
                      cwd=work)


def test_export_best_writes_the_winner_with_its_provenance(finished, work, winner, exported):
    assert exported.returncode == 0, exported.stdout + exported.stderr
    text = (work / "out" / "best.yaml").read_text()
    provenance = read_provenance(text)
    state = read_state(finished.experiment)
    assert provenance["experiment"] == NAME
    assert provenance["directory"] == str(finished.experiment)
    assert provenance["trial_id"] == winner.trial_id and provenance["epochs"] == winner.epochs
    assert provenance["objective"] == {"metric": "val_acc", "mode": "max", "value": winner.best}
    assert provenance["params"] == winner.params
    assert provenance["checkpoint"] == str(winner.checkpoint)
    assert (Path(provenance["checkpoint"]) / "trainer.pt").is_file()
    assert provenance["spec_hash"] == state.spec_hash
    assert provenance["mlflow"] == {"experiment": NAME, "parent_run_id": state.parent_run_id}
    # the checkpoint path is printed, and the command that comes next
    assert winner.trial_id in exported.stdout and str(winner.checkpoint) in exported.stdout
    assert "resnet-search retrain out/best.yaml" in exported.stdout
    spec = load_spec(work / "out" / "best.yaml")
    assert spec.fixed == {k: v for k, v in winner.config.items() if k != "epochs"}
    assert (spec.budget.trials, spec.budget.max_epochs) == (1, finished.spec["budget"][
        "max_epochs"])
    assert spec.tracking.mlflow_uri == finished.server_url and spec.tracking.experiment == NAME


def test_validate_accepts_the_export(exported, work, cli):
    done = cli("validate", "out/best.yaml", cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid (spec hash" in done.stdout and "1 trials x up to 3 epochs" in done.stdout


def test_the_experiment_directory_exports_the_same_spec_and_nothing_is_overwritten(
        finished, exported, work, cli):
    before = (work / "out" / "best.yaml").read_text()
    again = cli("export-best", str(finished.experiment), "-o", "out/best.yaml", cwd=work)
    assert again.returncode == 1 and "already exists" in again.stderr, again.stderr
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    assert (work / "out" / "best.yaml").read_text() == before
    other = cli("export-best", str(finished.experiment), "-o", "dir-best.yaml", cwd=work)
    assert other.returncode == 0, other.stdout + other.stderr
    assert load_spec(work / "dir-best.yaml").resolved() == load_spec(
        work / "out" / "best.yaml").resolved()
    forced = cli("export-best", str(finished.experiment), "-o", "out/best.yaml", "--force",
                 cwd=work)
    assert forced.returncode == 0, forced.stdout + forced.stderr


def test_retrain_reaches_the_winners_validation_accuracy_on_the_test_split(
        retrained, work, winner):
    assert retrained.returncode == 0, retrained.stdout[-3000:] + retrained.stderr[-3000:]
    assert "Traceback" not in retrained.stderr
    epochs = [line for line in retrained.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == [f"{e}/{EPOCHS}" for e in
                                                    range(1, EPOCHS + 1)]
    test_acc = json.loads((work / "model" / "model_card.json").read_text())["metrics"][
        "test_acc"]
    assert f"test_acc {test_acc:.4f}" in retrained.stdout
    assert f"val_acc of this config: {winner.best:.4f}" in retrained.stdout
    assert test_acc >= winner.best - TOLERANCE, (test_acc, winner.best)


def test_the_weights_reload_and_the_model_card_says_what_they_are(retrained, work, winner):
    assert retrained.returncode == 0, retrained.stdout[-3000:] + retrained.stderr[-3000:]
    card = json.loads((work / "model" / "model_card.json").read_text())
    assert card["config"] == {**winner.config, "epochs": EPOCHS}
    assert card["source"]["trial_id"] == winner.trial_id
    assert card["data"]["trained_on"] == "train+validation"
    assert set(card["versions"]) == {"resnet-search", "torch", "torchvision", "numpy", "python"}
    assert card["versions"]["torch"] == str(torch.__version__)
    assert "device" in card["hardware"] and card["mlflow"]["run_id"]
    markdown = (work / "model" / "model_card.md").read_text()
    assert f"**test_acc {card['metrics']['test_acc']:.4g}**" in markdown
    assert winner.trial_id in markdown
    # the weights, into the model the card's config builds, score what the card says
    data = load_data(DataConfig(**{k: v for k, v in card["data"].items()
                                   if k in ("dataset", "val_fraction", "split_seed", "subset")}),
                     validation=False)
    assert (len(data.train_y), len(data.test_y)) == (card["data"]["train_examples"],
                                                     card["data"]["test_examples"])
    from resnet_core.train import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(card["hardware"]["torch_threads"])  # the same sums, the same argmax
    try:
        trainer = Trainer(TrainConfig(**card["config"]), data, device="cpu")
        weights = torch.load(work / "model" / "model.pt", weights_only=True)
        trainer.model.load_state_dict(weights)
        tested = trainer.test()
    finally:
        torch.set_num_threads(threads)
    assert tested["test_acc"] == card["metrics"]["test_acc"]
    assert tested["test_loss"] == pytest.approx(card["metrics"]["test_loss"], rel=1e-6)


def test_the_retrain_is_an_mlflow_run_of_the_search_linked_to_the_winner(
        finished, retrained, work, winner):
    assert retrained.returncode == 0, retrained.stdout[-3000:] + retrained.stderr[-3000:]
    card = json.loads((work / "model" / "model_card.json").read_text())
    client = MlflowClient(finished.server_url)
    run = client.get_run(card["mlflow"]["run_id"])
    assert run.info.experiment_id == client.get_experiment_by_name(NAME).experiment_id
    assert run.info.status == "FINISHED" and run.info.run_name == f"retrain {winner.trial_id}"
    parent = read_state(finished.experiment).parent_run_id
    [trial_run] = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}' and "
                      f"tags.trial_id = '{winner.trial_id}'")
    tags = run.data.tags
    assert tags["retrain_of.parent_run_id"] == parent
    assert tags["retrain_of.trial_id"] == winner.trial_id
    assert tags["retrain_of.trial_run_id"] == trial_run.info.run_id
    assert tags["retrain_of.checkpoint"] == str(winner.checkpoint)
    assert "mlflow.parentRunId" not in tags  # not one of the search's trials
    assert run.data.metrics["test_acc"] == card["metrics"]["test_acc"]
    assert run.data.params["lr"] == str(winner.config["lr"])
    history = client.get_metric_history(run.info.run_id, "train_acc")
    assert sorted(p.step for p in history) == list(range(1, EPOCHS + 1))
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"model_card.md",
                                                                        "model_card.json"}


# What stops a retrain: Ctrl+C in its terminal, and that terminal closed (SIGHUP), with the exit
# code of each.
STOPPING = {"SIGINT": 130, "SIGHUP": 129}


@pytest.mark.parametrize("sig", STOPPING)
def test_ctrl_c_exits_130_saves_nothing_and_closes_the_run_killed(finished, exported, work,
                                                                   sig):
    spec = yaml.safe_load((work / "out" / "best.yaml").read_text())
    experiment_name = f"{NAME}-interrupted-{sig}"  # keep the search's own clean
    spec["tracking"]["experiment"] = experiment_name
    (work / f"{sig}.yaml").write_text(yaml.safe_dump(spec))
    output_file = work / f"{sig}.log"
    with open(output_file, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "search.cli", "retrain", f"{sig}.yaml", "--epochs", "50",
             "-o", f"stopped-{sig}"], cwd=work, env=cli_env(work), stdout=log,
            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "epoch 1/50" in output_file.read_text(), 480, "the first epoch")
        proc.send_signal(getattr(signal, sig))
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = output_file.read_text()
    assert code == STOPPING[sig], output
    assert "interrupted: nothing was saved" in output and "Traceback" not in output
    assert not list((work / f"stopped-{sig}").glob("model*"))  # no weights, no card
    client = MlflowClient(finished.server_url)
    experiment = client.get_experiment_by_name(experiment_name)
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED" and run.data.tags["reason"] == "interrupted"


def test_a_header_naming_a_checkpoint_that_is_gone_is_warned_of_and_marked_unverified(
        finished, exported, work, winner, cli):
    text = (work / "out" / "best.yaml").read_text()
    gone = f"{finished.experiment}/{winner.trial_id}/checkpoint_999999"
    assert f"#   checkpoint: {winner.checkpoint}\n" in text
    text = text.replace(f"#   checkpoint: {winner.checkpoint}\n", f"#   checkpoint: {gone}\n")
    # (its own MLflow experiment: the search's holds only the retrain the other tests read)
    text = text.replace(f"\n  experiment: {NAME}\n", f"\n  experiment: {NAME}-unverified\n")
    (work / "unverified.yaml").write_text(text)
    done = cli("retrain", "unverified.yaml", "--epochs", "1", "-o", "unverified", cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (f"warning: the checkpoint its provenance header names does not exist: {gone}"
            in done.stderr)
    card = json.loads((work / "unverified" / "model_card.json").read_text())
    assert card["source"]["checkpoint"] == gone
    assert card["source"]["checkpoint_verified"] is False
    assert "**Unverified**" in (work / "unverified" / "model_card.md").read_text()
    client = MlflowClient(finished.server_url)
    experiment = client.get_experiment_by_name(f"{NAME}-unverified")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.tags["retrain_of.checkpoint"] == gone
    assert run.data.tags["retrain_of.checkpoint_verified"] == "false"


def test_retrain_refuses_a_search_and_an_earlier_retrain(finished, retrained, work, cli):
    searching = cli("retrain", str(finished.spec_path), cwd=work)
    assert searching.returncode == 2, searching.stdout + searching.stderr
    assert "space has 6 parameter(s)" in searching.stderr and "export-best" in searching.stderr
    again = cli("retrain", "out/best.yaml", "-o", "model", cwd=work)
    assert again.returncode == 1 and "already holds a retrained model" in again.stderr
    assert "Traceback" not in searching.stderr + again.stderr
