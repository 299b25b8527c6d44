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
    seconds = sum(predict.epoch_seconds(t.curve, e) for t in replayed.trials.values()
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


# ---- N asynchronous workers, per-epoch durations, an epoch budget (the published protocol) ----

class Recorder:
    """Wraps the real searcher or scheduler a replay builds and logs each call the simulator
    makes on it, in order (the objects still decide everything)."""

    def __init__(self, inner, name, log):
        self.inner, self.name, self.log = inner, name, log

    def __getattr__(self, attr):
        found = getattr(self.inner, attr)
        if attr not in ("suggest", "on_trial_add", "on_trial_result", "on_trial_complete"):
            return found

        def call(*args, **kwargs):
            trial = next((a for a in args if isinstance(a, (str, simulator.Trial))), None)
            trial_id = trial.trial_id if isinstance(trial, simulator.Trial) else trial
            answer = found(*args, **kwargs)
            self.log.append((self.name, attr, trial_id, answer if attr == "on_trial_result"
                             and self.name == "scheduler" else None))
            return answer

        return call


def recorded_replay(monkeypatch, spec, predictor, workers, budget_epochs=None):
    log = []
    real_searcher, real_scheduler = simulator.build_searcher, simulator.build_scheduler
    monkeypatch.setattr(simulator, "build_searcher",
                        lambda *a: Recorder(real_searcher(*a), "searcher", log))
    monkeypatch.setattr(simulator, "build_scheduler",
                        lambda *a: Recorder(real_scheduler(*a), "scheduler", log))
    return simulator.replay(spec, predictor, workers, budget_epochs=budget_epochs), log


def uneven(params):
    """Epochs whose length depends on the configuration, as a surrogate's clock says."""
    lr = params["lr"]
    return Curve([0.5 + 0.1 * e - abs(math.log10(lr) + 1.5) / 10 for e in range(MAX_EPOCHS)],
                 [0.5 + 3 * lr * (e + 1) for e in range(MAX_EPOCHS)])


def test_n_workers_keep_rays_call_order(monkeypatch, replay_spec):
    spec = replay_spec({"type": "tpe", "seed": 2, "n_startup_trials": 3},
                       {"type": "asha", "reduction_factor": 2}, trials=20)
    replayed, log = recorded_replay(monkeypatch, spec, uneven, workers=4)
    running, ended, results, stops = set(), set(), iter(replayed.results), 0
    for i, (who, call, trial_id, decision) in enumerate(log):
        if call == "suggest":
            assert len(running) < 4  # a trial is suggested only for a free worker
            assert log[i + 1][:3] == ("scheduler", "on_trial_add", trial_id)
            running.add(trial_id)
        elif (who, call) == ("scheduler", "on_trial_result"):
            assert trial_id in running and next(results).trial_id == trial_id
            if decision == "STOP":  # the searcher never hears it; the trial ends at once
                assert log[i + 1][:3] == ("scheduler", "on_trial_complete", trial_id)
                stops += 1
            else:  # the searcher hears the result after the scheduler
                assert log[i + 1][:3] == ("searcher", "on_trial_result", trial_id)
        elif call == "on_trial_complete":
            if who == "scheduler":  # then the searcher, with the same trial
                assert log[i + 1][:3] == ("searcher", "on_trial_complete", trial_id)
                running.discard(trial_id)
                ended.add(trial_id)
    assert ended == set(replayed.trials) and not running
    # ASHA also says STOP at max_t; the early stops are among the STOPs
    assert 0 < sum(t.stopped for t in replayed.trials.values()) <= stops


def test_n_workers_run_at_most_n_trials_at_once_each_epoch_as_long_as_its_curve_says(
        replay_spec):
    spec = fifo_random(replay_spec, trials=9)
    replayed = simulator.replay(spec, uneven, workers=3)
    spans = {}
    for trial_id, trial in replayed.trials.items():
        times = [r.time for r in replayed.results if r.trial_id == trial_id]
        durations = [b - a for a, b in zip(times, times[1:])]
        assert durations == pytest.approx(trial.curve.seconds[1:])  # back to back, per epoch
        spans[trial_id] = (times[0] - trial.curve.seconds[0], times[-1])
    for moment in sorted(start for start, _ in spans.values()):
        assert sum(start - 1e-9 <= moment < end - 1e-9 for start, end in spans.values()) <= 3
    # A worker is never idle while trials remain: each trial after the first 3 starts when one
    # ends.
    ends = sorted(end for _, end in spans.values())
    starts = sorted(start for start, _ in spans.values())
    assert starts[:3] == [0.0, 0.0, 0.0]
    assert all(any(math.isclose(s, e) for e in ends) for s in starts[3:])


def test_an_epoch_budget_ends_the_search_at_exactly_b_epochs(replay_spec):
    spec = replay_spec({"type": "random", "seed": 0}, {"type": "asha", "reduction_factor": 2},
                       trials=10_000)
    replayed = simulator.replay(spec, uneven, workers=4, budget_epochs=57)
    assert replayed.epochs == 57
    assert replayed.end == replayed.results[-1].time
    started_after = [t for t in replayed.trials.values()
                     if not any(r.trial_id == t.trial_id for r in replayed.results)]
    assert len(started_after) <= 3  # only trials that started before the last result
    with pytest.raises(ValueError, match="budget_epochs is 0"):
        simulator.replay(spec, uneven, workers=4, budget_epochs=0)


def test_a_four_worker_replay_is_deterministic_for_a_seed(replay_spec):
    def run(seed):
        spec = replay_spec({"type": "tpe", "seed": seed, "n_startup_trials": 3},
                           {"type": "asha", "reduction_factor": 2}, trials=1000)
        found = simulator.replay(spec, uneven, workers=4, budget_epochs=60)
        return [(r.trial_id, r.epoch, r.value, r.time) for r in found.results]

    assert run(7) == run(7)
    assert run(7) != run(8)
