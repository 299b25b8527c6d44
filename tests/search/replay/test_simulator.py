"""The virtual clock and the trial life cycle of a replayed search (real Optuna, Ray's classes)."""

from __future__ import annotations

import math

import pytest

from search.replay import predict, simulator
from search.replay.predict import Curve

MAX_EPOCHS = 4  # the synthetic table's (conftest.py)


def nearest(spec, rows):
    return predict.Nearest(spec.space, rows, "val_acc", MAX_EPOCHS)


def fifo_random(replay_spec, trials=6, seed=0):
    return replay_spec({"type": "random", "seed": seed}, {"type": "fifo"}, trials=trials)


def test_the_same_seed_replays_the_same_search_and_another_seed_another(curve_rows, replay_spec):
    def run(seed):
        spec = replay_spec({"type": "tpe", "seed": seed, "n_startup_trials": 3},
                           {"type": "asha", "reduction_factor": 2, "brackets": 2}, trials=12)
        replayed = simulator.replay(spec, nearest(spec, curve_rows), workers=2)
        return [(r.trial_id, r.epoch, r.value, r.time) for r in replayed.results]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_one_worker_runs_trials_back_to_back_on_the_virtual_clock(curve_rows, replay_spec):
    spec = fifo_random(replay_spec)
    replayed = simulator.replay(spec, nearest(spec, curve_rows), workers=1)
    seconds = sum(simulator.epoch_seconds(t.curve, e) for t in replayed.trials.values()
                  for e in range(1, t.epoch + 1))
    assert replayed.end == pytest.approx(seconds)
    # Trial by trial: one starts when the one before it ended.
    order = [r.trial_id for r in replayed.results]
    assert order == sorted(order)


def test_two_workers_overlap_trials_and_finish_sooner(curve_rows, replay_spec):
    spec = fifo_random(replay_spec)
    one = simulator.replay(spec, nearest(spec, curve_rows), workers=1)
    two = simulator.replay(spec, nearest(spec, curve_rows), workers=2)
    assert [t.config for t in one.trials.values()] == [t.config for t in two.trials.values()]
    assert two.end < one.end
    first_epochs = [r for r in two.results if r.epoch == 1]
    assert first_epochs[0].trial_id != first_epochs[1].trial_id  # two trials ran at once
    with pytest.raises(ValueError, match="workers is 0"):
        simulator.replay(spec, nearest(spec, curve_rows), workers=0)


def test_a_diverged_curve_ends_its_trial_with_the_worst_value_one_epoch_later(replay_spec):
    spec = fifo_random(replay_spec, trials=1)

    def diverging(params):
        return Curve([0.3, 0.4], [1.0, 2.0], diverged=True)

    replayed = simulator.replay(spec, diverging, workers=1)
    assert [(r.epoch, r.value) for r in replayed.results] == [(1, 0.3), (2, 0.4),
                                                              (3, -math.inf)]
    assert replayed.end == pytest.approx(1.0 + 2.0 + 2.0)  # the NaN epoch as long as the last


def test_asha_stops_the_weak_trials_at_its_rungs_and_fifo_stops_none(curve_rows, replay_spec):
    asha = replay_spec({"type": "random", "seed": 1}, {"type": "asha", "grace_period": 1,
                                                       "reduction_factor": 2}, trials=12)
    replayed = simulator.replay(asha, nearest(asha, curve_rows), workers=2)
    stopped = [t for t in replayed.trials.values() if t.stopped]
    assert stopped and all(t.epoch in (1, 2) for t in stopped)  # rungs at epochs 1 and 2
    assert replayed.epochs < sum(simulator.length(t.curve) for t in replayed.trials.values())

    fifo = fifo_random(replay_spec, trials=12, seed=1)
    plain = simulator.replay(fifo, nearest(fifo, curve_rows), workers=2)
    assert not any(t.stopped for t in plain.trials.values())
    assert plain.epochs == sum(simulator.length(t.curve) for t in plain.trials.values())
    # Same sampler, same seed: the same configurations, whatever the scheduler did.
    assert [t.config for t in plain.trials.values()] == [t.config for t in replayed.trials.values()]
