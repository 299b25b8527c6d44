"""The study persisted for optuna-dashboard: rebuilt from a search's results the way its sampler
was told about each trial, written to SQLite (and to S3), and opened by the real optuna-dashboard.
Real Optuna and optuna-dashboard; the results are built by hand, one trial per kind of end."""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
from wsgiref.util import setup_testing_defaults

import optuna
import optuna_dashboard
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from trials import trial_record

from search.engine import samplers, study as studies
from search.engine.trial_states import OPTUNA_STATE
from search.experiment.results import Results, TrialRecord
from search.spec.model import parse_spec
from search.spec.outcome import Outcome

MAX_EPOCHS = 3
MILESTONES = [[0.5, 0.75], [0.3, 0.6, 0.9]]


def resolved_spec(**changes) -> dict:
    """What the record's spec.json holds: a validated spec, resolved (defaults filled)."""
    raw = {"name": "study-test", "data": {"dataset": "digits"},
           "budget": {"trials": 8, "max_epochs": MAX_EPOCHS},
           "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
           "space": {"lr": {"float": [0.01, 1.0], "log": True},
                     "residual": {"choice": ["add", "scaled"]},
                     "residual_scale": {"float": [0.0, 1.0], "when": {"residual": "scaled"}},
                     "schedule": {"choice": ["multistep", "cosine"]},
                     "milestones": {"choice": MILESTONES, "when": {"schedule": "multistep"}}},
           **changes}
    return parse_spec(raw).resolved()


def trial(trial_id: str, values: list, outcome: Outcome, *, start: float, status="TERMINATED",
          params=None, last: dict | None = None) -> TrialRecord:
    """A recorded trial: one report per epoch (Ray's timestamp and epoch time included)."""
    return trial_record(
        trial_id, values, outcome, start=start, status=status, last=last,
        params={"lr": 0.1, "residual": "add", "schedule": "cosine"} if params is None else params,
        error="boom" if outcome is Outcome.FAILED else None)


def results_of(*trials: TrialRecord) -> Results:
    """Best first, as the record lists them."""
    ranked = sorted(trials, key=lambda t: -(t.best if t.best is not None else -math.inf))
    return Results(metric="val_acc", mode="max", trials=ranked)


# Started in this order (`start`), listed best first: the study numbers them as they started.
SCALED = {"lr": 0.05, "residual": "scaled", "residual_scale": 0.25, "schedule": "multistep",
          "milestones": [0.3, 0.6, 0.9]}
TRIALS = (
    trial("stopped1", [0.30], Outcome.STOPPED, start=100.0),
    trial("complete", [0.50, 0.80, 0.70], Outcome.COMPLETED, start=200.0, params=SCALED),
    trial("diverged", [0.40, math.nan], Outcome.DIVERGED, start=300.0,
          last={"outcome": "diverged"}),
    trial("failed", [0.20], Outcome.FAILED, start=400.0, status="ERROR"),
    trial("running", [0.45, 0.55], Outcome.KILLED, start=500.0, status="RUNNING"),
    trial("pending", [], Outcome.KILLED, start=600.0, status="PENDING"),
)


@pytest.mark.parametrize("outcome, status, stopped_trials, state", [
    (Outcome.COMPLETED, "TERMINATED", "pruned", TrialState.COMPLETE),
    (Outcome.STOPPED, "TERMINATED", "pruned", TrialState.PRUNED),
    (Outcome.KILLED, "TERMINATED", "pruned", TrialState.PRUNED),
    (Outcome.DIVERGED, "TERMINATED", "pruned", TrialState.PRUNED),
    (Outcome.INVALID, "TERMINATED", "pruned", TrialState.PRUNED),
    (Outcome.OOM, "TERMINATED", "pruned", TrialState.FAIL),
    (Outcome.FAILED, "ERROR", "pruned", TrialState.FAIL),
    # the stock searcher (stopped_trials: complete) told an early end COMPLETE
    (Outcome.STOPPED, "TERMINATED", "complete", TrialState.COMPLETE),
    (Outcome.KILLED, "TERMINATED", "complete", TrialState.COMPLETE),
    (Outcome.DIVERGED, "TERMINATED", "complete", TrialState.PRUNED),
    # unfinished when the launch ended: a resume continues it
    (Outcome.KILLED, "RUNNING", "pruned", TrialState.RUNNING),
    (Outcome.KILLED, "PAUSED", "pruned", TrialState.RUNNING),
    (Outcome.KILLED, "PENDING", "pruned", TrialState.WAITING),
    (Outcome.COMPLETED, "UNKNOWN", "pruned", TrialState.COMPLETE),  # no Ray snapshot to read
])
def test_state_of(outcome, status, stopped_trials, state):
    assert studies.state_of(outcome, status, stopped_trials) is state


def test_the_searcher_and_the_study_read_one_table():
    assert samplers.OPTUNA_STATE is OPTUNA_STATE
    assert set(OPTUNA_STATE) == set(Outcome)


def test_a_completed_trial_holds_its_last_epoch_as_the_searcher_told_it():
    complete = TRIALS[1]
    assert complete.best == 0.80
    assert studies.value_of(TrialState.COMPLETE, complete) == 0.70
    # PRUNED: its last finite intermediate value, as Optuna's tell(state=PRUNED) stores it
    assert studies.value_of(TrialState.PRUNED, TRIALS[2]) == 0.40
    assert studies.value_of(TrialState.FAIL, TRIALS[3]) is None


def test_the_study_holds_every_recorded_trial_as_the_sampler_saw_it():
    study = studies.build(results_of(*TRIALS), resolved_spec())
    assert study.study_name == "study-test" and study.direction.name == "MAXIMIZE"
    assert study.metric_names == ["val_acc"]
    by_id = {t.user_attrs["trial_id"]: t for t in study.trials}
    assert [t.user_attrs["trial_id"] for t in study.trials] == [t.trial_id for t in TRIALS]
    assert {k: t.state for k, t in by_id.items()} == {
        "stopped1": TrialState.PRUNED, "complete": TrialState.COMPLETE,
        "diverged": TrialState.PRUNED, "failed": TrialState.FAIL,
        "running": TrialState.RUNNING, "pending": TrialState.WAITING}
    # every finite epoch, step = epoch; the NaN of the diverged epoch never reaches Optuna
    for record in TRIALS:
        assert by_id[record.trial_id].intermediate_values == dict(record.curve())
    complete = by_id["complete"]
    assert complete.value == 0.70 and complete.user_attrs["best"] == 0.80
    assert complete.user_attrs == {"trial_id": "complete", "outcome": "completed", "epochs": 3,
                                   "best": 0.80, "ray_status": "TERMINATED"}
    assert by_id["failed"].user_attrs["error"] == "boom"
    assert by_id["running"].datetime_complete is None
    assert by_id["pending"].datetime_start is None
    # Ray's timestamps: started 10 s before its first report, ended at its last
    assert (complete.datetime_complete - complete.datetime_start).total_seconds() == 30.0


def test_params_carry_the_distributions_of_the_space_they_were_sampled_from():
    study = studies.build(results_of(*TRIALS), resolved_spec())
    scaled = next(t for t in study.trials if t.user_attrs["trial_id"] == "complete")
    plain = next(t for t in study.trials if t.user_attrs["trial_id"] == "stopped1")
    assert scaled.distributions["lr"] == FloatDistribution(0.01, 1.0, log=True)
    assert scaled.distributions["residual_scale"] == FloatDistribution(0.0, 1.0)
    # a list-valued choice is stored by its position, as the live study stored it
    assert scaled.distributions["milestones"] == CategoricalDistribution([0, 1])
    assert scaled.params["milestones"] == MILESTONES.index(SCALED["milestones"])
    # a conditional parameter exists only where its condition held
    assert set(plain.params) == {"lr", "residual", "schedule"}


def test_params_that_do_not_replay_keep_the_trial_but_not_as_complete():
    outside = trial("outside", [0.5, 0.6, 0.9], Outcome.COMPLETED, start=1.0,
                    params={"lr": 5.0, "residual": "add", "schedule": "cosine"})
    unread = trial("unread", [0.5, 0.6, 0.7], Outcome.COMPLETED, start=2.0, params={})
    study = studies.build(results_of(outside, unread), resolved_spec())
    for frozen in study.trials:
        assert frozen.state is TrialState.FAIL and frozen.params == {}
        assert frozen.intermediate_values  # its curve still counts
    assert "lr" in study.trials[0].user_attrs["params_error"]
    assert "'lr' is not found" in study.trials[1].user_attrs["params_error"]


def test_a_completed_trial_whose_last_value_is_not_finite_is_failed():
    odd = trial("odd", [0.5, 0.6, math.inf], Outcome.COMPLETED, start=1.0)
    (frozen,) = studies.build(results_of(odd), resolved_spec()).trials
    assert frozen.state is TrialState.FAIL and frozen.value is None


def test_a_minimised_objective_is_a_minimised_study():
    spec = resolved_spec(objective={"metric": "val_loss", "mode": "min"})
    results = Results(metric="val_loss", mode="min", trials=[])
    assert studies.build(results, spec).direction.name == "MINIMIZE"


def test_persist_writes_a_fresh_study_db_each_time(tmp_path):
    spec = resolved_spec()
    written = studies.persist(tmp_path, results_of(*TRIALS), spec)
    assert written == tmp_path / "study.db"
    assert len(optuna.load_study(study_name="study-test",
                                 storage=studies.study_url(tmp_path)).trials) == len(TRIALS)
    # recreated from the record, not added to: a second launch's end replaces the study
    studies.persist(tmp_path, results_of(*TRIALS[:2]), spec)
    loaded = optuna.load_study(study_name="study-test", storage=studies.study_url(tmp_path))
    assert [t.user_attrs["trial_id"] for t in loaded.trials] == ["stopped1", "complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.db"]  # no temp file left
    # readable as the umask allows, like Ray's files: a teammate's dashboard may open it
    mode = (tmp_path / "study.db").stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask()
    with sqlite3.connect(tmp_path / "study.db") as db:
        assert db.execute("select count(*) from studies").fetchone() == (1,)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failure_to_persist_is_logged_and_returned_never_raised(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="resnet_search.study"):
        why = studies.persist_or_warn(blocker / "exp", results_of(*TRIALS), resolved_spec())
    assert why is not None and why.startswith("NotADirectoryError")
    assert [r.getMessage() for r in caplog.records] == [
        f"could not write the Optuna study {blocker / 'exp' / 'study.db'}: {why}"]


def test_persist_uploads_the_study_to_an_object_store(s3, tmp_path):
    target = studies.persist(f"{s3.uri}/runs/study-test", results_of(*TRIALS), resolved_spec())
    assert str(target) == f"{s3.uri}/runs/study-test/study.db"
    local = tmp_path / "downloaded.db"
    local.write_bytes(s3.fs.cat_file(f"{s3.name}/runs/study-test/study.db"))
    loaded = optuna.load_study(study_name="study-test", storage=f"sqlite:///{local}")
    assert len(loaded.trials) == len(TRIALS)


def dashboard_get(app, path: str) -> dict:
    """One GET through optuna-dashboard's own WSGI app (what its server runs)."""
    environ: dict = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    status: list[str] = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status == ["200 OK"], (status, body[:500])
    return json.loads(body)


def test_optuna_dashboard_opens_the_persisted_study(tmp_path):
    studies.persist(tmp_path, results_of(*TRIALS), resolved_spec())
    app = optuna_dashboard.wsgi(studies.study_url(tmp_path))
    (summary,) = dashboard_get(app, "/api/studies")["study_summaries"]
    assert summary["study_name"] == "study-test" and summary["directions"] == ["maximize"]
    detail = dashboard_get(app, f"/api/studies/{summary['study_id']}")
    assert len(detail["trials"]) == len(TRIALS)
    assert [t["state"] for t in detail["trials"]] == [
        "Pruned", "Complete", "Pruned", "Fail", "Running", "Waiting"]
    assert detail["objective_names"] == ["val_acc"]
    assert [t["number"] for t in detail["best_trials"]] == [1]  # the only COMPLETE one


# --- several objectives -------------------------------------------------------------------------

SEVERAL = (("val_acc", "max"), ("params", "min"))


def several_results(constraints=()) -> Results:
    """Four trials of a search of accuracy against parameters: two completed on the front
    (a trade-off), one completed behind them, one stopped early."""
    made = [trial(t, accs, outcome, start=s, last={"params": params})
            for t, accs, outcome, s, params in [
                ("big", [0.5, 0.8, 0.9], Outcome.COMPLETED, 100.0, 9e4),
                ("small", [0.4, 0.6, 0.7], Outcome.COMPLETED, 110.0, 2e4),
                ("behind", [0.4, 0.5, 0.6], Outcome.COMPLETED, 120.0, 5e4),
                ("cut", [0.3], Outcome.STOPPED, 130.0, 1e4)]]
    found = results_of(*made)
    found.objectives, found.constraints = SEVERAL, tuple(constraints)
    return found


def test_a_study_of_several_objectives_holds_their_values_and_directions():
    found = several_results()
    built = studies.build(found, resolved_spec(objective=[dict(metric=m, mode=d)
                                                           for m, d in SEVERAL]))
    assert built.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE]
    assert built.metric_names == ["val_acc", "params"]
    by_id = {t.user_attrs["trial_id"]: t for t in built.trials}
    assert by_id["big"].values == [0.9, 9e4] and by_id["small"].values == [0.7, 2e4]
    assert by_id["cut"].state is TrialState.PRUNED and by_id["cut"].values is None
    assert all(t.intermediate_values == {} for t in built.trials)  # none for several
    # Optuna's own front of the study is the record's
    assert sorted(t.user_attrs["trial_id"] for t in built.best_trials) == ["big", "small"]
    from search.engine.pareto import front_of
    assert sorted(front_of(found.candidates(), ["max", "min"])) == ["big", "small"]


def test_a_studys_trials_carry_the_constraints_the_searcher_told():
    found = several_results(constraints=[("params", "max", 5e4)])
    built = studies.build(found, resolved_spec(objective=[dict(metric=m, mode=d)
                                                           for m, d in SEVERAL]))
    by_id = {t.user_attrs["trial_id"]: t for t in built.trials}
    assert by_id["big"].constraints == {"params<=50000": 4e4}  # infeasible by 40,000
    assert by_id["small"].constraints == {"params<=50000": -3e4}
    # Optuna's front leaves the infeasible trial out, as the record's candidates do (`small`
    # dominates `behind`)
    assert [t.user_attrs["trial_id"] for t in built.best_trials] == ["small"]
    assert set(found.candidates()) == {"small", "behind"}
    assert not found.feasible(next(t for t in found.trials if t.trial_id == "big"))
