"""A tuner's parts and its one ledger, also in a tuner Ray restores from its pickles; and the
state earlier code saved still restores: resnet-search 0.2 (tests/search/fixtures/saved-0.2) and
commit c877e2e, the last with the MLflow mirror as one object (saved-c877e2e)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray.cloudpickle
from mlflow.tracking import MlflowClient
from ray import tune
from trials import FakeTrial
from tune_events import Fed

from search.engine.ledger import Ledger
from search.engine.samplers import FidelityAwareOptunaSearch
from search.run.tuner import parts, restored_tuner, trainable
from search.spec.model import load_spec
from search.tracking.runbook import RunBook

FIXTURES = Path(__file__).parents[1] / "fixtures"
SAVED = FIXTURES / "saved-0.2"
SAVES = {"0.2": SAVED, "c877e2e": FIXTURES / "saved-c877e2e"}


def restored(tmp_path: Path, saved: Path = SAVED):
    spec = load_spec(saved / "spec.yaml")
    experiment = Path(shutil.copytree(saved, tmp_path / "saved"))
    tuner = tune.Tuner.restore(str(experiment), trainable(spec, spec.job()),
                               resume_errored=True)
    return spec, experiment, tuner


def test_a_tuner_saved_by_0_2_restores_with_every_part_on_one_new_ledger(tmp_path):
    spec, experiment, tuner = restored(tmp_path)
    ours = parts(tuner, spec)
    assert isinstance(ours.ledger, Ledger) and ours.ledger.max_epochs == 2
    assert isinstance(ours.searcher, FidelityAwareOptunaSearch)
    every = (ours.mirror, ours.scheduler, ours.fail_fast, ours.progress, ours.searcher)
    assert all(part.ledger is ours.ledger for part in every)
    # The ledger is first among the callbacks: every other reads what it decided.
    callbacks = ours_callbacks(tuner)
    assert callbacks[0] is ours.ledger and ours.mirror in callbacks
    assert not hasattr(ours.mirror, "scheduler_stops")

    # What Tune does when the search goes on: the searcher from its own snapshot (which holds
    # an older searcher's attributes) keeps the launch's ledger; the mirror its saved runs.
    (searcher_state,) = experiment.glob("searcher-state-*.pkl")
    ours.searcher.restore(str(searcher_state))
    assert ours.searcher.ledger is ours.ledger and not hasattr(ours.searcher, "_last")
    (callback_state,) = experiment.glob("callback-states-*.pkl")
    states = ray.cloudpickle.loads(callback_state.read_bytes())
    mirror_state = next(s for s in states.values() if s and "runs" in s)
    ours.mirror.set_state(mirror_state)
    assert sorted(ours.mirror.runs) == ["b119ab4d", "b63aab00"] and ours.mirror.resumed

    # The parts work on the new ledger: a trial ends, and all of them read one decision.
    ours.ledger.stop("b63aab00")
    end = ours.searcher.ledger.end("b63aab00", errored=False, last={"epoch": 1})
    assert end.stopped_by == spec.scheduler.type and ours.ledger.ended("b63aab00") is end


def test_a_new_tuners_parts_share_one_ledger_through_tuner_pkl(tmp_path):
    """Ray pickles the scheduler, the callbacks and the searcher in one tuner.pkl: they come
    back sharing one (empty) ledger, and `parts` finds it."""
    spec, _, tuner = restored(tmp_path)
    ours = parts(tuner, spec)
    again = ray.cloudpickle.loads(ray.cloudpickle.dumps(
        {"callbacks": ours_callbacks(tuner), "scheduler": ours.scheduler,
         "searcher": ours.searcher}))
    ledger = again["callbacks"][0]
    assert isinstance(ledger, Ledger) and ledger is not ours.ledger
    assert again["scheduler"].ledger is ledger and again["searcher"].ledger is ledger
    assert all(getattr(c, "ledger", ledger) is ledger for c in again["callbacks"][1:])


def ours_callbacks(tuner) -> list:
    from search.engine import compat

    return compat.tuner_run_config(tuner).callbacks


def tracked_under(uri: str, parent_run_id: str, monkeypatch) -> None:
    """The MLflow store a saved experiment was tracked in, as much of it as its mirror needs: the
    parent run, with the id the saved state names (the fixtures keep no store, and MLflow gives
    a new run the id uuid4 draws)."""
    from mlflow.store.tracking import sqlalchemy_store

    from search.tracking.store import open_parent

    with monkeypatch.context() as patch:
        patch.setattr(sqlalchemy_store, "uuid",
                      SimpleNamespace(uuid4=lambda: uuid.UUID(parent_run_id)))
        made = open_parent(uri, "saved", "saved", tags={}, params={}, artifacts={})
    assert made == parent_run_id


@pytest.mark.parametrize("version", sorted(SAVES))
def test_a_saved_mirror_resumes_split_and_mirrors_a_trial_through_its_book(
        tmp_path, monkeypatch, version, fresh_mlflow):
    """A mirror pickled as one object (every attribute on the mirror) comes back split: the
    Tune callback, and its book of trial runs on the writer's thread. Ray hands it its saved
    state from callback-states-*.pkl as a resumed launch does; Tune's next snapshot keeps that
    state; a new trial's events reach MLflow through the book, its run numbered after the
    saved ones."""
    spec = load_spec(SAVES[version] / "spec.yaml")
    experiment = Path(shutil.copytree(SAVES[version], tmp_path / "saved"))
    tuner = restored_tuner(spec, spec.job(), experiment)
    ours = parts(tuner, spec)
    mirror = ours.mirror
    assert isinstance(mirror.book, RunBook) and mirror.ledger is ours.ledger
    assert not {"runs", "numbers", "parent_run_id", "_steps"} & set(vars(mirror))
    (callback_state,) = experiment.glob("callback-states-*.pkl")
    saved = next(s for s in ray.cloudpickle.loads(callback_state.read_bytes()).values()
                 if s and "runs" in s)
    assert mirror.book.parent_run_id == saved["parent_run_id"]

    # What Tune does when the search goes on: every callback gets its saved state back.
    ray.tune.callback.CallbackList(ours_callbacks(tuner)).restore_from_dir(str(experiment))
    assert mirror.resumed and mirror.runs == saved["runs"] and len(saved["runs"]) == 2
    # Tune's next snapshot holds it all, whether or not the writer has reached it yet.
    assert mirror.get_state() == saved

    uri = fresh_mlflow(tmp_path / "mlflow.db")
    tracked_under(uri, saved["parent_run_id"], monkeypatch)
    mirror.relink(uri)  # as the launch does (the pickle holds the URI masked)
    fed, trial = Fed(ours.ledger, mirror), FakeTrial("c0ffee00", {"lr": 0.01})
    fed.on_trial_start(0, [trial], trial)
    for n in (1, 2):
        fed.on_trial_result(0, [trial], trial, {"epoch": n, "training_iteration": n,
                                                "val_acc": 0.2 * n, "train_loss": 1.0 / n})
    trial.status = "TERMINATED"
    fed.on_trial_complete(0, [trial], trial)
    assert mirror.flush(60) and mirror.failures == 0

    run = MlflowClient(uri).get_run(mirror.runs["c0ffee00"])
    assert run.data.tags["mlflow.parentRunId"] == saved["parent_run_id"]
    assert run.info.run_name.startswith("t003")  # after the saved runs' numbers 1 and 2
    assert (run.info.status, run.data.tags["outcome"]) == ("FINISHED", "completed")
    assert (run.data.params["lr"], run.data.params["depth"]) == ("0.01", "20")
    steps = [p.step for p in MlflowClient(uri).get_metric_history(run.info.run_id, "val_acc")]
    assert sorted(steps) == [1, 2]
    assert mirror.get_state()["runs"] == {**saved["runs"], "c0ffee00": run.info.run_id}


def test_a_mirror_pickled_as_one_object_hands_what_it_learned_to_its_book():
    """The saved tuners hold mirrors as they were built; a mirror pickled later in its life
    (every attribute on it) keeps what it had learned, each part on its side."""
    from search.tracking.mirror import MlflowMirror

    spec = load_spec(SAVED / "spec.yaml")
    old = {"uri": "sqlite:///m.db", "parent_run_id": "p", "job": spec.job(),
           "writer": MlflowMirror("sqlite:///m.db", "p", spec.job(), None).writer,
           "runs": {"a": "run-a", "b": ""}, "configs": {"a": {"lr": 0.1}, "b": {"lr": 0.2}},
           "numbers": {"a": 1}, "closed": {"a"}, "verdicts": {"a": ({"outcome": "stopped"},
                                                                    "FINISHED")},
           "resumed": True, "backfilled": 3, "_ended": {"a"}, "_next_number": 2,
           "scheduler_stops": {"a"}}  # resnet-search 0.2's, the ledger's now
    mirror = MlflowMirror.__new__(MlflowMirror)
    mirror.__setstate__(old)
    assert (mirror.runs, mirror.known, mirror.closed) == ({"a": "run-a"}, {"a", "b"}, {"a"})
    assert mirror.configs == mirror.book.configs == old["configs"]
    assert mirror.verdicts == old["verdicts"] and mirror.resumed and mirror.book.resumed
    assert (mirror.book.numbers, mirror.book._next_number, mirror.book._ended) == (
        {"a": 1}, 2, {"a"})
    assert mirror.backfilled == 3 and mirror.ledger is None and "scheduler_stops" not in vars(
        mirror)
    assert mirror.get_state()["runs"] == {"a": "run-a"}


class Said:
    """A console that keeps what it is given to print."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str, **_: object) -> None:
        self.lines.append(text)


def test_a_cut_short_searcher_state_is_refused_and_left_as_it_is(tmp_path):
    from search.run.errors import LaunchError

    spec = load_spec(SAVES["c877e2e"] / "spec.yaml")
    experiment = Path(shutil.copytree(SAVES["c877e2e"], tmp_path / "saved"))
    (state,) = experiment.glob("searcher-state-*.pkl")
    kept = state.read_bytes()[:40]
    state.write_bytes(kept)
    with pytest.raises(LaunchError) as refused:
        restored_tuner(spec, spec.job(), experiment)
    assert f"Ray's {state.name}" in str(refused.value) and "cut short" in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    assert state.read_bytes() == kept


def test_a_cut_short_callbacks_state_is_set_aside_said_and_the_tuner_restored(tmp_path):
    spec = load_spec(SAVES["c877e2e"] / "spec.yaml")
    experiment = Path(shutil.copytree(SAVES["c877e2e"], tmp_path / "saved"))
    (state,) = experiment.glob("callback-states-*.pkl")
    state.write_bytes(state.read_bytes()[:-3])
    said = Said()
    tuner = restored_tuner(spec, spec.job(), experiment, said)
    assert parts(tuner, spec).ledger is not None
    assert said.lines == [f"Ray's {state.name} was cut short when the last driver was killed "
                          f"(kept as {state.name}.cut-short); resuming from its whole snapshot "
                          "files"]
    assert not state.exists() and (experiment / f"{state.name}.cut-short").is_file()
    # what Tune does next: no callbacks file to restore from, so nothing is read from it
    assert not ray.tune.callback.CallbackList(ours_callbacks(tuner)).can_restore(str(experiment))
