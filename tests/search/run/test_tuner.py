"""A tuner's parts and its one ledger, also in a tuner Ray restores from its pickles; and the
state resnet-search 0.2 saved still restores (tests/search/fixtures/saved-0.2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import ray.cloudpickle
from ray import tune

from search.engine.ledger import Ledger
from search.engine.samplers import FidelityAwareOptunaSearch
from search.run.tuner import parts, trainable
from search.spec.model import load_spec

SAVED = Path(__file__).parents[1] / "fixtures" / "saved-0.2"


def restored(tmp_path: Path):
    spec = load_spec(SAVED / "spec.yaml")
    experiment = Path(shutil.copytree(SAVED, tmp_path / "saved"))
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
