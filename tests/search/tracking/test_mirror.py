"""The MLflow mirror against a real SQLite store: one run per trial across crashes, resumes and
interruptions; nothing it does may hold up or fail a search."""

from __future__ import annotations

import threading

import pytest
from trials import FakeTrial
from tune_events import Fed

from search.engine.ledger import Ledger
from search.engine.trial_errors import error_reason
from search.spec.outcome import Outcome
from search.tracking.mirror import MLFLOW_STATUS
from search.tracking.store import probe, within


def test_within_returns_none_on_success():
    assert within(5, lambda: None) is None


def test_within_reports_an_error_instead_of_raising():
    def boom():
        raise ConnectionError("refused")

    assert within(5, boom) == "ConnectionError: refused"


def test_within_gives_up_at_its_deadline():
    release = threading.Event()
    # The call never returns until released: returning at all is the deadline's doing.
    assert within(0.3, release.wait) == "no answer within 0 s"
    release.set()


def test_probe_of_a_dead_server_answers_in_seconds(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    # "In seconds" is the mechanism: a refused connection is an answer, not retried, so the
    # probe reports it rather than sitting out its deadline (whatever the machine's load).
    said = probe("http://127.0.0.1:9", timeout_s=600)
    assert said is not None and "no answer within" not in said


def test_sqlite_store_probes_clean(tmp_path):
    assert probe(f"sqlite:///{tmp_path / 'm.db'}") is None
    assert (tmp_path / "m.db.lock").exists()
    assert probe(f"sqlite:///{tmp_path / 'new' / 'dir' / 'm.db'}") is None  # made, as MLflow does


def test_error_reason_without_an_error_file_points_to_ray():
    assert "error.txt" in error_reason(FakeTrial("t"))


def test_a_resumed_mirror_adopts_unsnapshotted_runs_and_closes_orphans(store, make_mirror,
                                                                       make_trial):
    """Driver 1 starts trials a and b and dies before Tune's snapshot records b's run; the
    snapshot never reaches trial c at all. Driver 2 restores a and b: b must reuse its run (not
    get a second one), and c's run must end KILLED with the reason, not stay RUNNING."""
    first = make_mirror()
    for trial in (make_trial("a", 0.1), make_trial("b", 0.2), make_trial("c", 0.3)):
        first.on_trial_start(0, [], trial)
    assert first.flush(30)
    snapshot = first.get_state()
    snapshot["runs"].pop("b")  # b's run id had not come back from MLflow at snapshot time

    second = make_mirror()
    second.set_state(snapshot)
    restored = [make_trial("a", 0.1), make_trial("b", 0.2), make_trial("d", 0.4)]  # d: anew
    for trial in restored:
        second.on_trial_start(0, restored, trial)
        second.on_trial_result(0, restored, trial, {"epoch": 1, "val_acc": 0.5})
    second.on_experiment_end(restored)

    by_trial = store.children()
    assert sorted(by_trial) == ["a", "b", "c", "d"]
    assert all(len(found) == 1 for found in by_trial.values()), by_trial
    assert by_trial["b"][0].info.run_id == first.runs["b"] == second.runs["b"]
    assert by_trial["b"][0].data.metrics["val_acc"] == 0.5
    assert by_trial["d"][0].data.params["depth"] == "20"  # the full resolved config
    orphan = by_trial["c"][0]
    assert orphan.info.status == "KILLED"
    assert orphan.data.tags["outcome"] == "killed"
    assert "driver died before Ray saved trial c" in orphan.data.tags["reason"]
    for trial_id in "abd":  # ended with the search after 1 epoch: killed, but not orphans
        run = by_trial[trial_id][0]
        assert (run.info.status, run.data.tags["outcome"]) == ("KILLED", "killed")
        assert "reason" not in run.data.tags and run.data.tags["epochs_trained"] == "1"
    assert first.failures == 0
    assert second.failures == 0


def test_an_interrupted_search_closes_its_runs_and_a_resume_reopens_them(
        store, make_mirror, make_trial, make_epoch):
    """Ctrl+C: running trials' runs end KILLED, reason interrupted. The resumed launch continues
    those trials: their runs are RUNNING again, without that verdict, and end with their true
    outcome. A trial that ended before the interruption keeps its run as it was."""
    first = make_mirror(stopped="c")  # ASHA stopped c
    a, b, c = make_trial("a", 0.1), make_trial("b", 0.2), make_trial("c", 0.3)
    for trial in (a, b, c):
        first.on_trial_start(0, [a, b, c], trial)
        for n in (1, 2):
            first.on_trial_result(0, [a, b, c], trial, make_epoch(n))
    c.status = "TERMINATED"
    first.on_trial_complete(0, [a, b, c], c)
    snapshot = first.get_state()  # Tune's last snapshot comes before the interrupted close
    first.ledger.interrupted = True  # the launch's interruption hook
    # Ray still hands over a result while it stops the trials after that snapshot: the resume
    # trains epoch 3 of a again, so this one must not reach MLflow (it would be there twice).
    first.on_trial_result(0, [a, b, c], a, make_epoch(3))
    first.on_experiment_end([a, b, c])

    runs = {t: found[0] for t, found in store.children().items()}
    for trial_id in "ab":
        run = runs[trial_id]
        assert run.info.status == "KILLED"
        assert (run.data.tags["outcome"], run.data.tags["reason"]) == ("killed", "interrupted")
        assert run.data.tags["epochs_trained"] == "2"
    assert (runs["c"].info.status, runs["c"].data.tags["outcome"]) == ("FINISHED", "stopped")
    assert first.failures == 0

    second = make_mirror(stopped="c")
    second.set_state(snapshot)
    a, b, c = make_trial("a", 0.1), make_trial("b", 0.2), make_trial("c", 0.3)
    c.status = "TERMINATED"
    for trial in (a, b):
        second.on_trial_start(0, [a, b, c], trial)
    assert second.flush(30)
    for trial_id in "ab":
        run = store.client.get_run(second.runs[trial_id])
        assert run.info.status == "RUNNING"
        assert not {"outcome", "reason"} & set(run.data.tags)

    for n in range(3, 7):  # a runs to the end of its budget (6 epochs)
        second.on_trial_result(0, [a, b, c], a, make_epoch(n))
    second.on_trial_result(0, [a, b, c], b, make_epoch(3))
    a.status = "TERMINATED"
    second.on_trial_complete(0, [a, b, c], a)
    second.on_experiment_end([a, b, c])  # the time limit: b is killed, not interrupted

    children = store.children()
    assert all(len(found) == 1 for found in children.values()), children
    runs = {t: found[0] for t, found in children.items()}
    assert (runs["a"].info.status, runs["a"].data.tags["outcome"]) == ("FINISHED", "completed")
    assert (runs["b"].info.status, runs["b"].data.tags["outcome"]) == ("KILLED", "killed")
    assert "reason" not in runs["a"].data.tags and "reason" not in runs["b"].data.tags
    assert [runs[t].data.tags["epochs_trained"] for t in "ab"] == ["6", "3"]
    assert (runs["c"].info.status, runs["c"].data.tags["outcome"]) == ("FINISHED", "stopped")
    assert store.steps(runs["a"].info.run_id, "val_acc") == [1, 2, 3, 4, 5, 6]
    assert second.failures == 0


def test_reconcile_gives_unseen_trials_runs_and_adopts_existing_ones(
        store, make_mirror, make_trial, make_epoch):
    """After a resume the launch may reconcile before Tune has handed the mirror its saved runs:
    a trial's existing run is found, not duplicated. A trial no mirror saw start gets a run with
    its full resolved params (from `configs`, or from the config Ray puts in its results)."""
    first = make_mirror()
    a = make_trial("a", 0.1)
    first.on_trial_start(0, [a], a)
    first.on_trial_result(0, [a], a, make_epoch(1))
    assert first.flush(30)

    second = make_mirror()
    results = {"a": [make_epoch(1), make_epoch(2)], "z": [make_epoch(1)],
               "y": [{**make_epoch(1), "config": {"lr": 0.4}}]}
    second.reconcile(results, configs={"z": {"lr": 0.3}})
    assert second.flush(30)
    store.assert_complete(results)
    runs = {t: found[0] for t, found in store.children().items()}
    assert runs["a"].info.run_id == first.runs["a"] == second.runs["a"]
    assert (runs["z"].data.params["lr"], runs["z"].data.params["depth"]) == ("0.3", "20")
    assert runs["y"].data.params["lr"] == "0.4" and runs["y"].data.tags["sampled"] == "lr"
    assert second.backfilled == 3 + 3 + 3  # a's epoch 2, z's and y's epoch 1
    second.set_state(first.get_state())  # Tune's restore comes later: same run
    assert second.runs["a"] == first.runs["a"]
    assert (first.failures, second.failures) == (0, 0)


def test_writes_the_store_refused_are_repaired_by_reconcile(store, make_mirror, make_trial,
                                                            make_epoch):
    """The store refuses every write for a while (here: the experiment is deleted, so MLflow
    rejects them at once): run creations, epochs and a close are all dropped after their
    deadline. Once it accepts writes again, reconcile creates the runs, with their params,
    back-fills every epoch and redoes the close."""
    mirror = make_mirror(deadline_s=0.2, stopped="a")
    experiment = store.client.get_run(store.parent).info.experiment_id
    store.client.delete_experiment(experiment)
    trials = [make_trial("a", 0.1), make_trial("b", 0.2)]
    results = {t.trial_id: [make_epoch(n) for n in (1, 2, 3)] for t in trials}
    for trial in trials:
        mirror.on_trial_start(0, trials, trial)
        for row in results[trial.trial_id]:
            mirror.on_trial_result(0, trials, trial, row)
    trials[0].status = "TERMINATED"
    mirror.on_trial_complete(0, trials, trials[0])
    assert mirror.flush(60)
    assert mirror.failures == 2 * (1 + 3) + 1  # every start, epoch and the close
    assert not store.children()

    store.client.restore_experiment(experiment)
    mirror.reconcile(results)
    assert mirror.flush(60)
    store.assert_complete(results)
    runs = {t: found[0] for t, found in store.children().items()}
    assert runs["a"].data.params["lr"] == "0.1" and runs["b"].data.params["depth"] == "20"
    assert (runs["a"].info.status, runs["a"].data.tags["outcome"]) == ("FINISHED", "stopped")
    assert runs["b"].info.status == "RUNNING"  # still training
    assert mirror.backfilled == 2 * 3 * 3
    assert mirror.failures == 9  # reconcile itself dropped nothing


@pytest.mark.parametrize("verdict, status", [
    (Outcome.COMPLETED, "FINISHED"), (Outcome.STOPPED, "FINISHED"), (Outcome.KILLED, "KILLED"),
    (Outcome.DIVERGED, "FAILED"), (Outcome.OOM, "FAILED"), (Outcome.INVALID, "FAILED"),
    (Outcome.FAILED, "FAILED"),
])
def test_every_outcome_maps_to_an_mlflow_status(verdict, status):
    assert MLFLOW_STATUS[verdict] == status


def test_an_epoch_reaches_mlflow_once_its_checkpoint_is_rays(store, make_mirror, make_trial,
                                                              make_epoch):
    """Ray takes a result, then its checkpoint in a second step; Ctrl+C between the two
    resumes the trial from the checkpoint before, which trains that epoch again. Logged at
    once, the epoch would be in MLflow twice."""
    mirror = make_mirror()
    a = make_trial("a", 0.1)
    mirror.on_trial_start(0, [a], a)
    mirror.on_trial_result(0, [a], a, make_epoch(1, should_checkpoint=True))
    assert mirror.flush(30) and store.steps(mirror.runs["a"], "val_acc") == []
    mirror.on_checkpoint(0, [a], a, checkpoint=None)
    # Ray has the checkpoint, but its experiment snapshot (what a killed driver resumes from)
    # still names the one before: not yet.
    assert mirror.flush(30) and store.steps(mirror.runs["a"], "val_acc") == []
    mirror.get_state()  # Tune's snapshot, which holds epoch 1's checkpoint
    assert mirror.flush(30) and store.steps(mirror.runs["a"], "val_acc") == [1]
    mirror.on_trial_result(0, [a], a, make_epoch(2, should_checkpoint=True))
    mirror.ledger.interrupted = True  # before Ray took epoch 2's checkpoint
    mirror.on_experiment_end([a])
    assert mirror.flush(30)
    assert store.steps(mirror.runs["a"], "val_acc") == [1]
    assert mirror.failures == 0


def test_a_trial_retried_in_the_same_driver_keeps_what_its_registered_checkpoint_holds(
        store, make_mirror, make_trial, make_epoch):
    """A trial that fails is restored by this driver from its last registered checkpoint, not
    from the snapshot: the epochs that checkpoint holds are final; those after it run again."""
    mirror = make_mirror()
    a = make_trial("a", 0.1)
    mirror.on_trial_start(0, [a], a)
    mirror.on_trial_result(0, [a], a, make_epoch(1, should_checkpoint=True))
    mirror.on_checkpoint(0, [a], a, checkpoint=None)  # no snapshot since
    mirror.on_trial_result(0, [a], a, make_epoch(2, should_checkpoint=True))  # then it fails
    mirror.on_trial_recover(0, [a], a)
    mirror.on_trial_result(0, [a], a, make_epoch(2, should_checkpoint=True))  # epoch 2 again
    mirror.on_checkpoint(0, [a], a, checkpoint=None)
    mirror.on_trial_complete(0, [a], a)
    assert mirror.flush(30)
    assert store.steps(mirror.runs["a"], "val_acc") == [1, 2]
    assert mirror.failures == 0


def test_an_epoch_logged_after_the_last_snapshot_is_not_logged_again_by_the_resumed_driver(
        store, make_mirror, make_trial, make_epoch):
    """Driver 1 logs epoch 2 as Tune asks for its snapshot, then dies before the snapshot is on
    disk: driver 2 resumes from the snapshot before (epoch 1's checkpoint) and trains epoch 2
    again. The run keeps epoch 2 once (the CI caught `[1, 2, 3, 3]`)."""
    first = make_mirror()
    a = make_trial("a", 0.1)
    first.on_trial_start(0, [a], a)
    first.on_trial_result(0, [a], a, make_epoch(1, should_checkpoint=True))
    first.on_checkpoint(0, [a], a, checkpoint=None)
    on_disk = first.get_state()  # the last snapshot that reached the disk: epoch 1
    first.on_trial_result(0, [a], a, make_epoch(2, should_checkpoint=True))
    first.on_checkpoint(0, [a], a, checkpoint=None)
    first.get_state()  # logs epoch 2; the driver is killed before this snapshot is written
    assert first.flush(30) and store.steps(first.runs["a"], "val_acc") == [1, 2]

    second = make_mirror()
    second.set_state(on_disk)
    second.reconcile({"a": [make_epoch(1)]})  # what Ray's results hold at resume
    second.on_trial_start(0, [a], a)
    for n in (2, 3):  # trained again: other values, another time
        second.on_trial_result(0, [a], a, make_epoch(n, should_checkpoint=True, val_acc=0.9,
                                                     train_loss=0.1, timestamp=1_800_000_000))
        second.on_checkpoint(0, [a], a, checkpoint=None)
    second.on_trial_complete(0, [a], a)
    assert second.flush(30)
    run_id = second.runs["a"]
    assert run_id == first.runs["a"]
    for key in ("val_acc", "train_loss"):
        assert store.steps(run_id, key) == [1, 2, 3], key
    assert first.failures == second.failures == 0


def test_a_pickled_mirror_keeps_its_uris_secret_masked_and_a_restore_gives_it_back():
    """Tune pickles its callbacks into tuner.pkl on shared storage: the tracking URI goes in
    masked, and the launch that restores the tuner links the full one back (driver.py)."""
    import ray.cloudpickle

    from search.engine.ledger import Ledger
    from search.spec.model import load_spec
    from search.tracking.mirror import MlflowMirror

    full = "postgresql+psycopg2://h:5432/mlflow?user=u&password=S3CRET"
    masked = "postgresql+psycopg2://h:5432/mlflow?user=u&password=***"
    mirror = MlflowMirror(full, "parent", load_spec("spaces/digits.yaml").job(),
                          Ledger(6, stop_tag="asha"))
    blob = ray.cloudpickle.dumps(mirror)  # as Tune pickles its run config
    assert b"S3CRET" not in blob
    assert mirror.uri == full and mirror.writer.uri == full  # the live one keeps it
    restored = ray.cloudpickle.loads(blob)
    assert (restored.uri, restored.writer.uri) == (masked, masked)
    restored.relink(full)
    assert (restored.uri, restored.writer.uri) == (full, full)


def test_the_pareto_tag_moves_with_the_front_as_each_trial_of_the_whole_budget_ends(
        store, make_trial, make_epoch):
    """Two objectives (val_acc max, params min, params <= 2.5e5): each trial that runs its
    whole budget moves `pareto=true` to the front of those ended so far, while the search runs;
    a trial stopped early or breaking the constraint never gets it. A mirror of a resumed launch
    starts from what its ledger restored and moves the tags the first launch set."""
    from search.spec.model import load_spec
    from search.tracking.mirror import MlflowMirror
    from search.tracking.names import PARETO_TAG

    job = load_spec("spaces/digits-pareto.yaml").job()
    assert job.objectives and job.constraints and job.max_epochs == 6

    def mirror(stopped=()):
        ledger = Ledger(job.max_epochs, stop_tag="asha")
        for trial_id in stopped:
            ledger.stop(trial_id)
        return Fed(ledger, MlflowMirror(store.uri, store.parent, job, ledger))

    def run(fed, trial, values, epochs=6):
        fed.on_trial_start(0, [trial], trial)
        for n in range(1, epochs + 1):
            fed.on_trial_result(0, [trial], trial, make_epoch(n, **values))
        trial.status = "TERMINATED"
        fed.on_trial_complete(0, [trial], trial)

    def tagged(fed):
        assert fed.flush(30)
        return sorted(t for t, runs in store.children().items()
                      if runs[0].data.tags.get(PARETO_TAG) == "true")

    first = mirror(stopped=("cut",))
    run(first, make_trial("big"), {"val_acc": 0.9, "params": 2e5})
    assert tagged(first) == ["big"]
    run(first, make_trial("small"), {"val_acc": 0.7, "params": 2e4})
    assert tagged(first) == ["big", "small"]
    run(first, make_trial("cut"), {"val_acc": 0.95, "params": 1e4}, epochs=2)  # stopped early
    run(first, make_trial("huge"), {"val_acc": 0.99, "params": 4e5})  # breaks the constraint
    assert tagged(first) == ["big", "small"]
    first.on_experiment_end([])

    # The resumed launch's ledger knows how the first launch's trials ended (from the record).
    second = mirror(stopped=("cut",))
    for trial_id, last in (("big", {"val_acc": 0.9, "params": 2e5}),
                           ("small", {"val_acc": 0.7, "params": 2e4})):
        second.ledger.end(trial_id, errored=False, last={**make_epoch(6), **last})
    run(second, make_trial("better"), {"val_acc": 0.92, "params": 1e4})
    assert tagged(second) == ["better"]  # it dominates both: they lose the tag
    assert first.failures == 0 and second.failures == 0
