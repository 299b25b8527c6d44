"""Optimizers: registry, parameter groups (no decay on norms/biases), per-optimizer settings."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from resnet_core.config import TrainConfig
from resnet_core.train.optim import OPTIMIZERS, build_optimizer


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(1))
        self.frozen = nn.Parameter(torch.ones(3, 3), requires_grad=False)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3))) * self.scale


def names_by_group(model, opt):
    ids = {id(p): n for n, p in model.named_parameters()}
    return [({ids[id(p)] for p in g["params"]}, g["weight_decay"]) for g in opt.param_groups]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_norms_biases_and_scalars_get_no_weight_decay_by_default(name):
    model = Tiny()
    opt = build_optimizer(model, TrainConfig(optimizer=name, weight_decay=1e-3))
    assert names_by_group(model, opt) == [
        ({"conv.weight", "fc.weight"}, 1e-3),
        ({"bn.weight", "bn.bias", "fc.bias", "scale"}, 0.0),
    ]


def test_decay_norm_and_bias_puts_every_trainable_parameter_in_one_decayed_group():
    model = Tiny()
    opt = build_optimizer(model, TrainConfig(weight_decay=1e-3, decay_norm_and_bias=True))
    assert names_by_group(model, opt) == [
        ({"conv.weight", "fc.weight", "bn.weight", "bn.bias", "fc.bias", "scale"}, 1e-3)]


# (name, class, expected hyper-parameters of every group)
TABLE = [
    ("sgd", torch.optim.SGD, {"lr": 0.2, "momentum": 0.8, "nesterov": False}),
    ("nesterov", torch.optim.SGD, {"lr": 0.2, "momentum": 0.8, "nesterov": True}),
    ("adamw", torch.optim.AdamW, {"lr": 0.2, "betas": (0.8, 0.999)}),
]


@pytest.mark.parametrize("name,cls,expected", TABLE, ids=[t[0] for t in TABLE])
def test_optimizer_settings(name, cls, expected):
    opt = build_optimizer(Tiny(), TrainConfig(optimizer=name, lr=0.2, momentum=0.8))
    assert type(opt) is cls
    for group in opt.param_groups:
        assert {k: group[k] for k in expected} == expected


def test_table_covers_the_registry_and_the_schema():
    assert {t[0] for t in TABLE} == set(OPTIMIZERS)
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == "optimizer")
    assert set(field.metadata["knob"].allowed()) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_step_moves_the_weights(name):
    torch.manual_seed(0)
    model = Tiny()
    opt = build_optimizer(model, TrainConfig(optimizer=name, lr=0.1))
    before = model.conv.weight.detach().clone()
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    assert not torch.equal(before, model.conv.weight)


def test_weight_decay_is_not_applied_to_excluded_parameters():
    model = Tiny()
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.1, momentum=0.0,
                                             weight_decay=0.5))
    bias_before = model.fc.bias.detach().clone()
    weight_before = model.fc.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # zero gradient: only weight decay can move a parameter
    opt.step()
    assert torch.equal(model.fc.bias, bias_before)
    assert torch.allclose(model.fc.weight, weight_before * (1 - 0.1 * 0.5))


@pytest.mark.parametrize("cfg,message", [
    (TrainConfig(optimizer="nesterov", momentum=0.0), "momentum is 0.0 but must be > 0"),
    (TrainConfig(optimizer="adam"), "optimizer is 'adam' but must be one of"),
])
def test_bad_settings_raise_value_error(cfg, message):
    with pytest.raises(ValueError, match=message):
        build_optimizer(Tiny(), cfg)
