"""`resnet-search launch` through real Ray, Optuna, ASHA and a real MLflow store."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
import ray.cloudpickle as pickle
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

pytestmark = pytest.mark.ray


def runs_of(uri: str, experiment: str):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def optuna_trials(experiment_dir: Path):
    """The study Ray Tune saved with the searcher (our own file, so unpickling is trusted)."""
    files = sorted(glob.glob(str(experiment_dir / "searcher-state-*.pkl")))
    assert files, f"no searcher state in {experiment_dir}"
    with open(files[-1], "rb") as handle:
        state = pickle.load(handle)
    study = state["_ot_study"] if isinstance(state, dict) else state[2]
    return study.trials


def test_launch_digits_end_to_end(tmp_path, write_spec, digits_spec, cli):
    spec = digits_spec()
    result = cli("launch", str(write_spec(spec)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The mirror swallows MLflow errors; a healthy store must have taken every write.
    assert "MLflow writes failed" not in result.stderr, result.stderr

    # The best config is printed with the table of best trials and the MLflow UI command.
    assert "best trials of 'e2e-digits'" in result.stdout
    assert "best config: {" in result.stdout and '"lr":' in result.stdout
    # (a SQLite store has no UI of its own: the command that serves one, for the experiment
    # directory, relative to where the launch ran)
    assert "compare the trials in MLflow:  resnet-search ui runs/e2e-digits\n" in result.stdout

    # One parent run, one child per trial, per-epoch metrics with steps 1..N.
    client, parents, children = runs_of(spec["tracking"]["mlflow_uri"], "e2e-digits")
    assert len(parents) == 1 and len(children) == 6
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

    # Optuna was told the truth: early-stopped trials are PRUNED, full-budget ones COMPLETE.
    trials = optuna_trials(Path(spec["storage_path"]) / "e2e-digits")
    states = [t.state for t in trials]
    assert len(trials) == 6
    assert states.count(TrialState.PRUNED) == outcomes.count("stopped")
    assert states.count(TrialState.COMPLETE) == outcomes.count("completed")
    for trial in trials:
        # Conditional parameter: residual_scale exists only when residual is scaled.
        assert ("residual_scale" in trial.params) == (trial.params["residual"] == "scaled")

    # The same name with a changed spec is refused in seconds, before Ray starts; nothing is lost.
    changed = {**spec, "budget": {"trials": 7, "max_epochs": 3}}
    again = cli("launch", str(write_spec(changed, "changed.yaml")), cwd=tmp_path, timeout=120)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "different spec" in again.stderr and "--name" in again.stderr
    assert "Traceback" not in again.stderr
    _, parents_after, children_after = runs_of(spec["tracking"]["mlflow_uri"], "e2e-digits")
    assert len(parents_after) == 1 and len(children_after) == 6
