"""The simulator's contract: every sampler x scheduler combination a spec allows drives the real
searcher and scheduler classes (built by search.engine, as a launch builds them) through
replayed trials, without a Ray runtime, and leaves them in the state a real search would."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import ray
from optuna.trial import TrialState

from search.engine import compat
from search.engine.samplers import SAMPLERS
from search.replay import predict, simulator
from search.spec import schedulers as registry
from search.spec.model import SpecError, parse_spec

# Every entry of the registry, at its defaults unless set here (ASHA as the replays of target 4
# run it, with one bracket and with two).
SCHEDULERS = {**{name: {"type": name} for name in registry.SCHEDULERS},
              "asha": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
              "asha_2_brackets": {"type": "asha", "grace_period": 1, "reduction_factor": 2,
                                  "brackets": 2}}

MAX_EPOCHS = 4  # the synthetic table's (conftest.py)


def allowed(sampler: str, stopped: str, scheduler: str) -> bool:
    """Whether a spec takes the combination (DEHB's sampler and scheduler go together only,
    and it has no stock mode)."""
    try:
        parse_spec({"name": "s", "data": {"dataset": "digits"},
                    "budget": {"trials": 10, "max_epochs": MAX_EPOCHS},
                    "sampler": {"type": sampler, "stopped_trials": stopped},
                    "scheduler": SCHEDULERS[scheduler], "space": {"lr": {"float": [0.1, 1]}}})
    except SpecError:
        return False
    return True


COMBINATIONS = [(sampler, stopped, scheduler) for sampler in SAMPLERS
                for stopped in ("pruned", "complete") for scheduler in SCHEDULERS
                if allowed(sampler, stopped, scheduler)]


def test_only_dehbs_pairing_rule_keeps_combinations_out():
    left_out = {(a, b, c) for a in SAMPLERS for b in ("pruned", "complete") for c in SCHEDULERS
                } - set(COMBINATIONS)
    assert left_out == {(a, b, c) for a, b, c in left_out if "dehb" in (a, c)}
    assert ("dehb", "pruned", "dehb") in COMBINATIONS


@pytest.mark.parametrize("sampler,stopped,scheduler", COMBINATIONS)
def test_every_combination_replays_through_the_real_classes(sampler, stopped, scheduler,
                                                            curve_rows, replay_spec):
    searched = replay_spec({"type": sampler, "seed": 3, "stopped_trials": stopped},
                    SCHEDULERS[scheduler], trials=10)
    predictor = predict.Nearest(searched.space, curve_rows, "val_acc", MAX_EPOCHS)
    replayed = simulator.replay(searched, predictor, workers=2)

    assert not ray.is_initialized()  # Ray's classes, not its runtime
    assert len(replayed.trials) == 10
    times = [r.time for r in replayed.results]
    assert times == sorted(times) and len(replayed.results) == replayed.epochs
    for trial_id, trial in replayed.trials.items():
        epochs = [r.epoch for r in replayed.results if r.trial_id == trial_id]
        assert epochs == list(range(1, trial.epoch + 1))  # each epoch once, in order (also
        # across a pause: a paused trial goes on from where it paused)
        assert 1e-3 <= trial.config["lr"] <= 1.0
        assert ("residual_scale" in trial.config) == (trial.config["residual"] == "scaled")
        diverged = trial.curve.diverged
        if not diverged and not trial.stopped:
            assert trial.epoch == MAX_EPOCHS  # a trial no one stopped ran its budget
    stopped_ids = {t for t, trial in replayed.trials.items() if trial.stopped}
    if not any(searched.scheduler.rungs(MAX_EPOCHS)):
        assert not stopped_ids
    else:
        assert stopped_ids, f"{scheduler} stops some of 10 trials at its rungs"
        assert stopped_ids <= replayed.scheduler.ledger.stopped  # the record a launch keeps

    # Optuna was told every trial, in the state a launch tells it.
    study = compat.optuna_study(replayed.searcher)
    assert len(study.trials) == 10
    states = {t.number: t.state for t in study.trials}
    assert TrialState.RUNNING not in states.values()
    in_order = list(replayed.trials.values())
    for number, trial in enumerate(in_order):
        # Stock OptunaSearch takes what the searcher is told: a trial Tune stopped where the
        # scheduler had paused it is told no result, and is PRUNED whatever its epochs.
        told_nothing = trial.paused_at[-1:] == [trial.epoch]
        if trial.curve.diverged and trial.epoch > len(trial.curve.values):
            expected = {TrialState.PRUNED, TrialState.FAIL} if stopped == "pruned" else \
                {TrialState.COMPLETE, TrialState.FAIL} | ({TrialState.PRUNED} if told_nothing
                                                          else set())
        elif stopped == "complete" and told_nothing:
            expected = {TrialState.PRUNED}
        elif trial.stopped:
            expected = {TrialState.PRUNED if stopped == "pruned" else TrialState.COMPLETE}
        else:
            expected = {TrialState.COMPLETE}
        assert states[number] in expected, (number, trial.epoch, trial.stopped)


def test_a_replay_runs_no_torch_code_and_no_ray_runtime():
    # Validating a spec reads resnet_core's registry names (resnet_core.names, no torch); the
    # replay must then run without a single call into resnet_core, and never load torch.
    code = textwrap.dedent("""
        import os, sys
        import ray
        from search.replay import predict, simulator
        from search.replay.table import Row
        from search.spec.model import parse_spec
        space = {"lr": {"float": [1e-3, 1.0], "log": True},
                 "block": {"choice": ["basic", "preact"]},
                 "momentum": {"float": [0.5, 0.99], "when": {"block": ["preact"]}}}
        searched = parse_spec({"name": "r", "data": {"dataset": "digits"},
                               "budget": {"trials": 8, "max_epochs": 3},
                               "sampler": {"type": "tpe", "n_startup_trials": 3},
                               "scheduler": {"type": "asha"}, "space": space})
        rows = [Row(index=i, params={"lr": 10 ** (-3 + i / 10), "block": "basic"},
                    epochs=[{"epoch": e, "val_acc": (i % 7) / 10 + e / 100,
                             "epoch_seconds": 1.0} for e in (1, 2, 3)], outcome="completed")
                for i in range(30)]
        predictor = predict.Nearest(searched.space, rows, "val_acc", 3)
        roots = [os.path.dirname(m.__file__) + os.sep for name in ("torch", "resnet_core")
                 if (m := sys.modules.get(name)) is not None]
        calls = set()

        def watch(frame, event, arg):
            if event == "call" and frame.f_code.co_filename.startswith(tuple(roots)):
                calls.add(frame.f_code.co_filename)
            elif event == "c_call" and str(getattr(arg, "__module__", "")).startswith("torch"):
                calls.add(arg.__name__)

        sys.setprofile(watch)
        replayed = simulator.replay(searched, predictor, workers=2)
        sys.setprofile(None)
        assert len(replayed.trials) == 8 and replayed.epochs >= 8
        print(len(roots), sorted(calls), ray.is_initialized(), "torch" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    # 1 root watched (resnet_core, loaded by the validation), no call into it, torch not loaded.
    assert done.stdout.strip().splitlines()[-1] == "1 [] False False"
