"""Optimizers by name, with weight decay kept off norms and biases.

Decaying BN scales and biases only shrinks a scale-invariant network's effective learning rate
and hurts accuracy (Goyal et al. 2017, "Accurate, Large Minibatch SGD"; timm's default), so by
default every parameter with ndim <= 1 (norm weights, biases, learnable residual scalars) sits in
a group with weight_decay 0.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from resnet_core.config import TrainConfig
from resnet_core import names


def _sgd(groups: list[dict], cfg: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, fused=fused)


def _nesterov(groups: list[dict], cfg: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    if cfg.momentum <= 0:
        raise ValueError(f"momentum is {cfg.momentum} but must be > 0 for optimizer 'nesterov'")
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=fused)


def _adamw(groups: list[dict], cfg: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    # `momentum` is beta1 so that one knob means "gradient averaging" for every optimizer.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), fused=fused)


Build = Callable[[list[dict], TrainConfig, bool], torch.optim.Optimizer]
OPTIMIZERS: dict[str, Build] = names.registry(names.OPTIMIZERS, {
    "sgd": _sgd,
    "nesterov": _nesterov,
    "adamw": _adamw,
})


def param_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool) -> list[dict]:
    """Trainable parameters split into a decayed group and a no-decay group (ndim <= 1)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": params, "weight_decay": weight_decay}]
    return [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by `cfg.optimizer` over `model`'s trainable parameters."""
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer is {cfg.optimizer!r} but must be one of {list(OPTIMIZERS)}")
    groups = param_groups(model, cfg.weight_decay, cfg.decay_norm_and_bias)
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError("model has no trainable parameters")
    # Fused CUDA kernels update all parameters in one launch: measurably faster for the many
    # small tensors of a ResNet; CPU keeps the reference implementation.
    fused = all(p.is_cuda for g in groups for p in g["params"])
    return OPTIMIZERS[cfg.optimizer](groups, cfg, fused)
