"""`resnet-search launch` through real Ray, Optuna, ASHA and a real MLflow tracking server: what
the session's finished digits search (tests/e2e/finished.py) left in MLflow, in Optuna and on
the terminal."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import ray.cloudpickle as pickle
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState


def runs_of(uri: str, experiment: str):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment}"
    # (a retrain of the winner, test_winner.py, is a run of the experiment linked by tags)
    runs = [r for r in client.search_runs([found.experiment_id], max_results=1000)
            if "retrain_of.trial_id" not in r.data.tags]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def optuna_trials(experiment_dir: Path):
    """The study Ray Tune saved with the searcher (our own file, so unpickling is trusted)."""
    files = sorted(glob.glob(str(experiment_dir / "ray" / "searcher-state-*.pkl")))
    assert files, f"no searcher state in {experiment_dir}"
    with open(files[-1], "rb") as handle:
        state = pickle.load(handle)
    study = state["_ot_study"] if isinstance(state, dict) else state[2]
    return study.trials


def test_the_launch_prints_the_best_trials_and_config_and_took_every_mlflow_write(finished):
    result = finished.launch
    assert result.returncode == 0, result.stdout + result.stderr
    # The mirror swallows MLflow errors; a healthy server must have taken every write.
    assert "MLflow writes failed" not in result.stderr, result.stderr
    name, trials = finished.spec["name"], finished.spec["budget"]["trials"]
    assert f"best trials of '{name}' ({trials} trials)" in result.stdout
    assert "best config: {" in result.stdout and '"lr":' in result.stdout


def test_one_parent_run_and_one_child_per_trial_with_every_epoch(finished):
    spec = finished.spec
    client, parents, children = runs_of(finished.server_url, spec["name"])
    assert len(parents) == 1 and len(children) == spec["budget"]["trials"]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {"spec_hash", "code_version", "version.torch"} <= set(parent.data.tags)
    assert "best_val_acc" in parent.data.metrics
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        history = client.get_metric_history(child.info.run_id, "val_acc")
        steps = sorted(m.step for m in history)
        assert steps == list(range(1, len(steps) + 1)) and steps, steps
        assert int(child.data.tags["epochs_trained"]) == len(steps)
        assert child.data.params["depth"] == "20"  # fixed values are logged with the trial
    outcomes = [c.data.tags["outcome"] for c in children]
    assert "stopped" in outcomes, outcomes  # ASHA stopped at least one trial early
    assert "completed" in outcomes, outcomes
    stopped = [c for c in children if c.data.tags["outcome"] == "stopped"]
    assert all(c.data.tags["stopped_by"] == "asha" and c.info.status == "FINISHED"
               for c in stopped)


def test_optuna_was_told_the_truth_about_early_stopped_trials(finished):
    _, _, children = runs_of(finished.server_url, finished.spec["name"])
    outcomes = [c.data.tags["outcome"] for c in children]
    trials = optuna_trials(finished.experiment)
    states = [t.state for t in trials]
    assert len(trials) == finished.spec["budget"]["trials"]
    assert states.count(TrialState.PRUNED) == outcomes.count("stopped")
    assert states.count(TrialState.COMPLETE) == outcomes.count("completed")
    for trial in trials:
        # Conditional parameter: residual_scale exists only when residual is scaled.
        assert ("residual_scale" in trial.params) == (trial.params["residual"] == "scaled")


def test_the_same_name_with_a_changed_spec_is_refused_before_ray_starts(finished, tmp_path,
                                                                          cli):
    # On a copy of the experiment: the refusal must leave it as it was, and the shared search
    # is never touched.
    storage = tmp_path / "runs"
    shutil.copytree(finished.experiment, storage / finished.experiment.name)
    before = sorted(p.relative_to(storage) for p in storage.rglob("*"))
    changed = {**finished.spec, "budget": {"trials": 7, "max_epochs": 3},
               "storage_path": str(storage)}
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    again = cli("launch", str(path), cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "different spec" in again.stderr and "--name" in again.stderr
    assert "Traceback" not in again.stderr
    assert "Started a local Ray instance" not in again.stderr
    assert sorted(p.relative_to(storage) for p in storage.rglob("*")) == before
    _, parents, children = runs_of(finished.server_url, finished.spec["name"])
    assert len(parents) == 1 and len(children) == finished.spec["budget"]["trials"]
