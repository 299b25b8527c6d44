"""LR schedules: values at known steps (closed forms), warm-up, per-batch stepping, resume."""

from __future__ import annotations

import dataclasses
import io
import math

import pytest
import torch

from resnet_core.config import TrainConfig
from resnet_core.train.schedules import SCHEDULES, build_scheduler, lr_at, lr_trace

SPE = 10  # steps per epoch
LR = 0.1


def cfg_of(**kw) -> TrainConfig:
    return TrainConfig(**{"lr": LR, "epochs": 4, **kw})


def cos_between(hi: float, lo: float, frac: float) -> float:
    return lo + (hi - lo) * (1 + math.cos(math.pi * frac)) / 2


# (schedule, overrides, {step: expected lr}); 4 epochs x 10 steps = 40 steps.
TABLE = [
    ("constant", {}, {0: LR, 17: LR, 39: LR}),
    ("step", {"step_size": 1.5, "gamma": 0.5}, {0: LR, 14: LR, 15: LR / 2, 29: LR / 2, 30: LR / 4}),
    ("multistep", {"milestones": (0.5, 0.75), "gamma": 0.1},
     {0: LR, 19: LR, 20: LR * 0.1, 29: LR * 0.1, 30: LR * 0.01, 39: LR * 0.01}),
    ("exponential", {"gamma": 0.5}, {0: LR, 5: LR * 0.5 ** 0.5, 10: LR / 2, 20: LR / 4}),
    ("cosine", {"min_lr_ratio": 0.0}, {0: LR, 10: cos_between(LR, 0, 0.25), 20: LR / 2,
                                       39: cos_between(LR, 0, 39 / 40)}),
    ("cosine", {"min_lr_ratio": 0.1}, {0: LR, 20: 0.01 + 0.09 / 2, 30: cos_between(LR, 0.01, 0.75)}),
    # OneCycleLR: starts at lr/25, peaks at step pct_start*40-1 = 9, ends at lr/25/1e4.
    ("onecycle", {"pct_start": 0.25}, {0: LR / 25, 9: LR, 39: LR / 25 / 1e4,
                                       24: cos_between(LR, LR / 25e4, 15 / 30)}),
    # Warm-up (1 epoch = 10 steps) from lr/100, linear, then the main schedule.
    ("constant", {"warmup_epochs": 1}, {0: LR / 100, 5: LR / 100 + (LR - LR / 100) / 2, 10: LR,
                                        39: LR}),
    ("cosine", {"warmup_epochs": 1}, {0: LR / 100, 9: LR / 100 + (LR - LR / 100) * 0.9,
                                      10: LR, 25: LR / 2}),
    ("step", {"warmup_epochs": 1, "step_size": 1, "gamma": 0.5}, {10: LR, 19: LR, 20: LR / 2}),
    # A milestone inside warm-up applies when warm-up ends; the others stay absolute.
    ("multistep", {"warmup_epochs": 1, "milestones": (0.1, 0.75), "gamma": 0.1},
     {9: LR / 100 + (LR - LR / 100) * 0.9, 10: LR * 0.1, 29: LR * 0.1, 30: LR * 0.01}),
    ("exponential", {"warmup_epochs": 0.5, "gamma": 0.5}, {0: LR / 100, 5: LR, 15: LR / 2}),
    # OneCycle's own start is lr/25: warm-up climbs from lr/100 to it, then the cycle runs.
    ("onecycle", {"warmup_epochs": 1, "pct_start": 0.3}, {0: LR / 100, 10: LR / 25,
                                                          18: LR, 39: LR / 25e4}),
]


@pytest.mark.parametrize("schedule,overrides,expected", TABLE,
                         ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(TABLE)])
def test_lr_at_known_steps(schedule, overrides, expected):
    trace = lr_trace(cfg_of(schedule=schedule, **overrides), SPE)
    assert len(trace) == 4 * SPE
    for step, lr in expected.items():
        assert trace[step] == pytest.approx(lr, rel=1e-6, abs=1e-12), f"step {step}"


def test_table_covers_every_registered_schedule():
    assert {s for s, _, _ in TABLE} == set(SCHEDULES)
    allowed = dataclasses.fields(TrainConfig)
    knob = next(f for f in allowed if f.name == "schedule").metadata["knob"]
    assert set(knob.allowed()) == set(SCHEDULES)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_warmup_starts_at_lr_over_100_and_rises_every_batch(schedule):
    trace = lr_trace(cfg_of(schedule=schedule, warmup_epochs=1), SPE)
    assert trace[0] == pytest.approx(LR / 100)
    assert all(a < b for a, b in zip(trace[:SPE], trace[1:SPE + 1]))


@pytest.mark.parametrize("schedule", ["exponential", "cosine", "onecycle"])
def test_lr_changes_within_an_epoch(schedule):
    trace = lr_trace(cfg_of(schedule=schedule), SPE)
    assert len(set(trace[SPE:2 * SPE])) == SPE  # every batch of epoch 2 has its own lr


def test_lr_at_matches_trace_and_rejects_out_of_range_steps():
    cfg = cfg_of(schedule="cosine")
    assert lr_at(cfg, 20, SPE) == lr_trace(cfg, SPE)[20]
    with pytest.raises(ValueError, match="step is 40"):
        lr_at(cfg, 40, SPE)


@pytest.mark.parametrize("overrides,message", [
    ({"warmup_epochs": 4}, "warmup_epochs is 4 but must be < epochs"),
    ({"schedule": "multistep", "milestones": (0.5, 1.5)}, r"milestones\[1\] is 1.5"),
    ({"schedule": "cosinus"}, "schedule is 'cosinus' but must be one of"),
    ({"schedule": "onecycle", "pct_start": 0.025}, "pct_start is 0.025"),
])
def test_bad_settings_raise_value_error_naming_the_field(overrides, message):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    with pytest.raises(ValueError, match=message):
        build_scheduler(opt, cfg_of(**overrides), SPE)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_state_dict_loads_weights_only_and_resumes_exactly(schedule):
    cfg = cfg_of(schedule=schedule, warmup_epochs=0.5)
    expected = lr_trace(cfg, SPE)

    def fresh():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
        return opt, build_scheduler(opt, cfg, SPE)

    opt, sched = fresh()
    for _ in range(13):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    opt2, sched2 = fresh()
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    resumed = []
    for _ in range(13, 40):
        resumed.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step()
    assert resumed == expected[13:]
