"""Fused trials (resnet_core/train/fused.py): trials of one architecture that differ in optimizer
numbers, augmentation and seed, trained as one vmapped model, compute what the separate Trainers
compute: the same losses at every step and the same weights after, to float tolerance."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from resnet_core.config import DataConfig, TrainConfig
from resnet_core.data.datasets import load_data
from resnet_core.train import Trainer
from resnet_core.train.fused import FusedTrials, fusion_problem

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # (see test_trainer.py: spin-waits on a shared 2-core machine)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return load_data(DataConfig(dataset="synthetic", synthetic_size=256, image_size=16))


BASE = TrainConfig(depth=20, width=0.25, batch_size=32, epochs=2, optimizer="nesterov",
                   schedule="onecycle", warmup_epochs=0.0, eval_batch_size=64)


def trials(*changes: dict) -> list[TrainConfig]:
    return [dataclasses.replace(BASE, **change) for change in changes]


@pytest.mark.parametrize("cfgs, field", [
    (trials({"lr": 0.1}, {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.0}), None),
    (trials({}, {"augment": 1.0, "seed": 3, "label_smoothing": 0.1}), None),
    (trials({}, {"depth": 32}), "depth"),
    (trials({}, {"batch_size": 64}), "batch_size"),
    (trials({}, {"schedule": "cosine"}), "schedule"),
    (trials({"optimizer": "adamw"}, {"optimizer": "adamw", "lr": 0.01}), "adamw"),
])
def test_which_trials_can_be_fused(cfgs, field):
    problem = fusion_problem(cfgs)
    assert (problem is None) == (field is None)
    if field:
        assert field in problem


SEPARATE = [
    {"lr": 0.1, "seed": 0},
    {"lr": 0.03, "momentum": 0.5, "weight_decay": 1e-3, "seed": 1},
    {"lr": 0.2, "label_smoothing": 0.1, "augment": 0.5, "seed": 2},
    {"lr": 0.05, "augment": 1.0, "seed": 3},  # mixup: soft targets for every trial
]


def test_fused_trials_compute_what_separate_trainers_compute(data):
    cfgs = trials(*SEPARATE)
    fused = FusedTrials(cfgs, data, device=CPU)
    assert fused.soft  # one trial mixes, so every trial gets soft targets
    separate = [Trainer(cfg, data, device=CPU) for cfg in cfgs]
    streams = [iter(t.train_loader.epoch(0)) for t in separate]
    steps = len(separate[0].train_loader)
    assert steps >= 5
    for step, (x, y) in enumerate(fused.batches(0)):
        got = fused.train_step(x, y)
        expected = torch.stack([t.train_step(*next(s))[0] for t, s in zip(separate, streams)])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"step {step}: {m}")
    assert fused.step == steps
    for k, trainer in enumerate(separate):
        mine = fused.module(k).state_dict()
        for name, tensor in trainer.model.state_dict().items():
            torch.testing.assert_close(mine[name].float(), tensor.float(), rtol=1e-3, atol=1e-4,
                                       msg=lambda m: f"trial {k}, {name}: {m}")


def test_fused_trials_learn_a_second_epoch_with_plain_labels(data):
    cfgs = trials({"lr": 0.1, "augment": 0.0}, {"lr": 0.05, "augment": 0.0, "seed": 1})
    fused = FusedTrials(cfgs, data, device=CPU)
    assert not fused.soft
    losses = [fused.train_step(x, y) for epoch in (0, 1) for x, y in fused.batches(epoch)]
    assert len(losses) == 2 * len(fused.loaders[0]) and losses[0].shape == (2,)
    assert all(torch.isfinite(loss).all() for loss in losses)


def test_configs_that_cannot_be_fused_are_refused(data):
    with pytest.raises(ValueError, match="depth"):
        FusedTrials(trials({}, {"depth": 32}), data, device=CPU)


@pytest.mark.cuda
def test_fused_trials_on_the_gpu_compute_what_separate_trainers_compute(data):
    cuda = torch.device("cuda")
    cfgs = [dataclasses.replace(c, precision="fp32", channels_last=False)
            for c in trials(*SEPARATE[:2])]
    allow = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # full fp32 convolutions on both sides
    try:
        fused = FusedTrials(cfgs, data, device=cuda)
        separate = [Trainer(cfg, data, device=cuda) for cfg in cfgs]
        streams = [iter(t.train_loader.epoch(0)) for t in separate]
        for x, y in fused.batches(0):
            got = fused.train_step(x, y)
            expected = torch.stack([t.train_step(*next(s))[0] for t, s in zip(separate, streams)])
            torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)
    finally:
        torch.backends.cudnn.allow_tf32 = allow
    bf16 = FusedTrials(trials(*SEPARATE), data, device=cuda)  # bf16 + channels_last
    assert bf16.runtime.amp_dtype == torch.bfloat16 and bf16.runtime.channels_last
    losses = [bf16.train_step(x, y) for x, y in bf16.batches(0)]
    assert all(torch.isfinite(loss).all() for loss in losses)
