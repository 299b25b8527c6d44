"""The replay warm-starts a search as a launch does (build_searcher with the warm start's
knowledge): the queued configuration is its first trial, and a TPE search told where the good
region is proposes there from its first modelled trial, where the cold one does not."""

from __future__ import annotations

from search.engine.warm import Earlier, knowledge
from search.spec.outcome import Outcome
from search.experiment.results import Results, TrialRecord
from search.replay import simulator
from search.replay.predict import Curve
from search.spec.model import parse_spec


def spec_of(**changes):
    return parse_spec({"name": "warm-replay", "data": {"dataset": "digits"},
                       "budget": {"trials": 6, "max_epochs": 2},
                       "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 5},
                       "scheduler": {"type": "fifo"},
                       "space": {"lr": {"float": [0.001, 1.0], "log": True}}, **changes})


def predictor(config):  # the higher the learning rate, the better
    return Curve(values=[config["lr"] / 2, config["lr"]], seconds=[1.0, 1.0])


def told(lrs):
    return Results("val_acc", "max", [TrialRecord(
        trial_id=f"t{i}", params={"lr": lr}, config={}, results=[{"epoch": 1, "val_acc": lr / 2},
                                                                {"epoch": 2, "val_acc": lr}],
        status="TERMINATED", error=None, checkpoint=None, outcome=Outcome.COMPLETED, best=lr,
        epochs=2, metric="val_acc") for i, lr in enumerate(sorted(lrs, reverse=True))])


def test_a_warm_replay_starts_with_the_queue_then_models_the_good_region():
    spec = spec_of(warm_start={"enqueue": [{"lr": 0.5}]})
    known = knowledge(spec.space, "val_acc", "max",
                      [Earlier("e", told([0.001 * 2 ** i for i in range(10)]))],
                      enqueue=spec.warm_start.enqueue)
    warm = simulator.replay(spec, predictor, workers=1, warm=known)
    cold = simulator.replay(spec, predictor, workers=1)
    lrs = [trial.config["lr"] for trial in warm.trials.values()]
    assert lrs[0] == 0.5
    assert min(lrs[1:]) > 0.1, lrs  # told: 0.512 was best
    cold_lrs = [trial.config["lr"] for trial in cold.trials.values()]
    assert min(cold_lrs) < 0.1, cold_lrs  # cold: its 5 random start-up trials spread out
