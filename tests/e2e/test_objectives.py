"""Several objectives through the real CLI (real local Ray, Optuna, MLflow on SQLite, real
digits): accuracy against parameter count with a parameter budget, searched by multi-objective
TPE with MO-ASHA stopping trials early; `validate` says what is searched, the launch's end names
the Pareto front, `trials --json` carries every objective, marks the front and the trials that
break the constraint, MLflow holds every objective as a metric and tags the front's runs,
`export-best` picks the winner from the front and `report` draws it. A bad objective is refused
before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

from search.winner.header import read_provenance

from driving import (SMALL_DATA, ctrl_c, driver_log, results, runs_of, start_launch, trial_dirs,
                     wait_for)

OBJECTIVES = [{"metric": "val_acc", "mode": "max"}, {"metric": "params", "mode": "min"}]
# ResNet-20 on digits: 17,534 parameters at width 0.25, 68,786 at 0.5 (measured); the bound
# keeps the narrow nets only.
BOUND = 40_000.0
# conftest's tiny spec without its width: these searches vary it
FIXED = {"depth": 20, "batch_size": 128, "optimizer": "nesterov", "schedule": "onecycle",
         "augment": 0.0}


def dominated(point: tuple, by: tuple) -> bool:
    """(val_acc, params): `by` is at least as good in both and better in one."""
    return by[0] >= point[0] and by[1] <= point[1] and by != point


def hand_front(trials: list[dict]) -> set[str]:
    """The front of `trials --json`'s trials, worked out here: trials of the whole budget that
    hold the constraints, none dominated by another of them."""
    candidates = {t["trial_id"]: (t["objectives"]["val_acc"], t["objectives"]["params"])
                  for t in trials if t["outcome"] == "completed" and t["feasible"]}
    return {t for t, p in candidates.items()
            if not any(dominated(p, q) for u, q in candidates.items() if u != t)}


def tagged(uri: str) -> set[str]:
    _, _, children = runs_of(uri)
    return {c.data.tags["trial_id"] for c in children if c.data.tags.get("pareto") == "true"}


def test_a_two_objective_search_with_a_constraint_ends_with_its_pareto_front(
        tmp_path, digits_spec, write_spec, cli, reaper):
    spec = digits_spec(
        objective=OBJECTIVES, constraints=[{"metric": "params", "max": BOUND}],
        budget={"trials": 8, "max_epochs": 3}, data=SMALL_DATA,
        sampler={"type": "tpe", "seed": 0, "n_startup_trials": 4},
        scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2},
        space={"lr": {"float": [0.01, 0.3], "log": True}, "width": {"choice": [0.25, 0.5]}},
        fixed=FIXED)
    path = write_spec(spec)
    checked = cli("validate", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ("objectives max val_acc, min params (a Pareto front); constraints params <= 40000"
            in checked.stdout)

    launched = cli("launch", str(path), cwd=tmp_path)
    output = launched.stdout + launched.stderr
    assert launched.returncode == 0, output[-4000:]
    assert "Pareto front: " in launched.stdout, launched.stdout[-3000:]

    listed = cli("trials", str(path), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert found["objectives"] == OBJECTIVES
    trials = found["trials"]
    assert len(trials) == 8
    for trial in trials:  # every objective at its last epoch; the constraint read from it
        assert set(trial["objectives"]) == {"val_acc", "params"}
        assert trial["feasible"] == (trial["objectives"]["params"] <= BOUND)
        assert trial["objectives"]["params"] in (17534.0, 68786.0)
    assert {t["feasible"] for t in trials} == {True, False}, trials  # both widths were tried

    expected = hand_front(trials)
    assert expected, trials
    assert {t["trial_id"] for t in trials if t["pareto"]} == expected
    for trial_id in expected:
        assert trial_id in launched.stdout.split("Pareto front: ")[1].splitlines()[0]
    status = cli("status", str(path), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    front = json.loads(status.stdout)["experiment"]["front"]
    assert {t["trial_id"] for t in front} == expected
    assert all(set(t["values"]) == {"val_acc", "params"} for t in front)
    shown = cli("status", str(path), cwd=tmp_path)
    assert f"front      {len(expected)} trial" in shown.stdout, shown.stdout
    # MO-ASHA stopped some trials early: they are never on the front
    assert any(t["outcome"] == "stopped" and not t["pareto"] for t in trials), trials

    client, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(children) == 8
    for child in children:  # each objective logged as a metric of its trial's run
        assert {"val_acc", "params"} <= set(child.data.metrics)
    # the front's runs, and only they, carry pareto=true
    assert {c.data.tags["trial_id"] for c in children
            if c.data.tags.get("pareto") == "true"} == expected

    # The winner is picked from the front (its knee by default, or by a rule), with every
    # objective in its file; a rule that does not parse is a bad config.
    best = tmp_path / "best.yaml"
    exported = cli("export-best", str(path), "-o", str(best), cwd=tmp_path)
    said = exported.stdout + exported.stderr
    assert exported.returncode == 0, said
    assert "picked by the knee of the Pareto front" in said, said
    header = best.read_text()
    # read as `retrain` reads it: YAML quotes an id of digits only ('89299235')
    source = read_provenance(header)
    assert source is not None and source["trial_id"] in expected, header[:2000]
    assert set(source["objectives"]) == {"val_acc", "params"}, source
    assert source["picked_by"] == "the knee of the Pareto front", source
    smallest = cli("export-best", str(path), "-o", str(best), "--force", "--pick",
                   "min params where val_acc >= 0", cwd=tmp_path)
    assert smallest.returncode == 0, smallest.stdout + smallest.stderr
    bad = cli("export-best", str(path), "--pick", "max val_ac", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'val_acc'" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    reported = cli("report", str(path), cwd=tmp_path)
    assert reported.returncode == 0, reported.stdout + reported.stderr
    folder = Path(spec["storage_path"]) / spec["name"] / "report"
    assert (folder / "pareto_front.png").stat().st_size > 1000
    assert (folder / "hypervolume.png").stat().st_size > 1000
    index = (folder / "index.html").read_text()
    assert "Pareto front of val_acc and params" in index
    assert "Hypervolume of the Pareto front over trial-epochs spent" in index

    # The record's copy of the spec keeps the list: the same command finds it finished.
    again = cli("launch", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "finished earlier" in again.stderr and "Pareto front" not in again.stderr


def test_a_bad_objective_list_is_refused_before_anything_starts(tmp_path, digits_spec,
                                                                 write_spec, cli):
    spec = digits_spec(objective=[{"metric": "val_acc", "mode": "max"},
                                  {"metric": "param", "mode": "min"}],
                       scheduler={"type": "hyperband"})
    path = write_spec(spec)
    for command in ("validate", "launch"):
        refused = cli(command, str(path), cwd=tmp_path)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "objective[1].metric: metric is 'param'" in refused.stderr
        assert "did you mean 'params'" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (Path(spec["storage_path"]) / spec["name"]).exists()  # nothing was made


def test_an_interrupted_two_objective_search_resumes_and_its_front_moves_with_it(
        tmp_path, digits_spec, write_spec, cli, reaper):
    """Ctrl+C after the first trials: the front so far is tagged in MLflow and shown by
    `status`; the same command resumes, and the front of the whole search replaces it."""
    spec = digits_spec(
        objective=OBJECTIVES, budget={"trials": 5, "max_epochs": 2}, data=SMALL_DATA,
        scheduler={"type": "fifo"},
        trial={"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0, "max_concurrent": 1},
        space={"lr": {"float": [0.01, 0.3], "log": True}, "width": {"choice": [0.25, 0.5]}},
        fixed=FIXED)
    path = write_spec(spec)
    uri = spec["tracking"]["mlflow_uri"]
    experiment = Path(spec["storage_path"]) / spec["name"]
    driver = start_launch(path, tmp_path)
    wait_for(lambda: sum(len(results(d)) == 2 for d in trial_dirs(experiment)) >= 2, 300,
             "two finished trials", proc=driver)
    assert ctrl_c(driver) == 130, driver_log(driver)
    before = json.loads(cli("trials", str(path), "--json", cwd=tmp_path).stdout)["trials"]
    assert len(before) < 5 and hand_front(before), before
    assert tagged(uri) == hand_front(before) == {t["trial_id"] for t in before if t["pareto"]}
    status = json.loads(cli("status", str(path), "--json", cwd=tmp_path).stdout)
    assert {t["trial_id"] for t in status["experiment"]["front"]} == hand_front(before)

    again = cli("launch", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout and "Pareto front: " in again.stdout
    after = json.loads(cli("trials", str(path), "--json", cwd=tmp_path).stdout)["trials"]
    assert len(after) == 5
    kept = {t["trial_id"]: t["objectives"] for t in before if t["outcome"] == "completed"}
    for trial in after:  # what was done before Ctrl+C was kept, not run again
        if trial["trial_id"] in kept:
            assert trial["objectives"] == kept[trial["trial_id"]]
    assert tagged(uri) == hand_front(after) == {t["trial_id"] for t in after if t["pareto"]}
