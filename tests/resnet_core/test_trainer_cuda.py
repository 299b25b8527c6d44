"""The Trainer on a GPU: bf16 autocast and channels_last where the CPU runs fp32, the dataset
resident on the device, learning as on the CPU, resume, fp16 with its scaler, and torch.compile
agreeing with eager mode (the throughput benchmark trains compiled). Marked cuda: run on a GPU machine (bench/gpu/run.py); CPU machines deselect them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from resnet_core.config import DataConfig, TrainConfig
from resnet_core.data.datasets import load_data
from resnet_core.train import Trainer

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(dataset="digits"))


def recipe(**kw) -> TrainConfig:
    """test_trainer.py's digits recipe (97.9-99.3% on the CPU in 6 epochs)."""
    base = dict(depth=20, width=0.5, batch_size=64, epochs=6, optimizer="nesterov", lr=0.1,
                schedule="cosine", augment=0.0, zero_init_residual=False, tta=False)
    return TrainConfig(**{**base, **kw})


def test_a_small_resnet_learns_digits_on_the_gpu_in_bf16_and_channels_last(digits):
    trainer = Trainer(recipe(), digits, device=CUDA)
    rt = trainer.runtime
    assert (rt.amp_dtype, rt.channels_last, rt.grad_scaler) == (torch.bfloat16, True, False)
    assert all(p.is_cuda for p in trainer.model.parameters())
    assert trainer.train_loader.x.is_cuda  # the dataset lives on the device
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, y = next(iter(trainer.train_loader.epoch(0)))
    assert x.is_cuda and y.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
    metrics = list(trainer.fit())
    assert metrics[-1]["val_acc"] >= 0.95, metrics
    assert trainer.test()["test_acc"] >= 0.95
    total_mib = torch.cuda.get_device_properties(CUDA).total_memory / 2**20
    assert all(0 < m["peak_mem_mb"] < total_mib for m in metrics)


def test_resume_on_the_gpu_continues_the_run(digits, tmp_path):
    cfg = recipe(epochs=3)
    first = Trainer(cfg, digits, device=CUDA)
    next(first.fit())
    first.save(tmp_path / "epoch1.pt")
    resumed = Trainer(cfg, digits, device=CUDA)
    resumed.load_state_dict(Trainer.read(tmp_path / "epoch1.pt"))
    assert (resumed.epoch, resumed.step) == (1, first.step)
    rest = list(resumed.fit())
    assert [m["epoch"] for m in rest] == [2, 3]
    assert rest[-1]["train_loss"] < 1.0 and rest[-1]["val_acc"] > 0.8


def test_fp16_runs_with_a_grad_scaler(digits):
    trainer = Trainer(recipe(epochs=1, precision="fp16"), digits, device=CUDA)
    assert trainer.runtime.grad_scaler and trainer.scaler is not None
    metrics = next(trainer.fit())
    assert torch.isfinite(torch.tensor(metrics["train_loss"]))


def test_torch_compile_computes_what_eager_mode_computes(digits):
    cfg = recipe(epochs=1, precision="fp32", channels_last=False)
    eager = Trainer(cfg, digits, device=CUDA)
    compiled = Trainer(dataclasses.replace(cfg, compile=True), digits, device=CUDA)
    assert compiled.runtime.compile and compiled.net is not compiled.model
    x, y = next(iter(eager.train_loader.epoch(0)))
    eager.model.eval(), compiled.model.eval()
    with torch.no_grad():
        expected, got = eager.net(x), compiled.net(x)
    # (cuDNN's convolutions run in TF32 in both; inductor fuses and reorders the rest)
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2)


def test_costs_on_the_gpu_count_as_on_the_cpu_and_leave_training_as_it_was(digits):
    # FLOPs and parameters depend on shapes only; latency is timed between synchronisations in
    # the run's bf16 and channels_last (resnet_core/train/cost.py).
    from resnet_core.train.cost import forward_flops, param_count

    trainer = Trainer(recipe(epochs=1), digits, device=CUDA)
    cpu = Trainer(recipe(epochs=1), digits, device="cpu")
    costs = trainer.static_costs()
    assert costs["params"] == param_count(cpu.model) > 0
    assert costs["flops"] == forward_flops(cpu.model, tuple(digits.train_x.shape[1:])) > 0
    assert costs["latency_ms"] > 0 and trainer.model.training
    (m,) = list(trainer.fit())
    assert m["train_seconds"] == m["epoch_seconds"] > 0
