"""The one ResNet builder: a config's model fields -> a network.

Every variant is a combination of registry rows (preset, block, stem, shortcut, merge); this
module only assembles them. The layout and names are torchvision's (`conv1, bn1, relu,
maxpool, layer1..N, avgpool, fc`), so torchvision's ResNet state_dicts load unchanged.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Callable

from torch import nn

from ..config import TrainConfig, knob_of
from .blocks import BLOCKS, Block
from .merges import MERGES
from .pretrained import load_pretrained
from .presets import PRESETS
from .shortcuts import shortcut_factory
from .stems import STEMS

MODEL_FIELDS = ("depth", "block", "width", "stem", "shortcut", "residual", "residual_scale",
                "residual_learnable", "residual_target", "zero_init_residual",
                "dynamic_kernels", "pretrained")


class ResNet(nn.Sequential):
    """stem -> layer1..N -> [block-specific head] -> global average pool -> fc, run in order."""

    def __init__(self, stem: OrderedDict[str, nn.Module], stages: list[nn.Sequential],
                 head: OrderedDict[str, nn.Module], features: int, num_classes: int) -> None:
        layers = OrderedDict(stem)
        layers.update((f"layer{i}", stage) for i, stage in enumerate(stages, start=1))
        layers.update(head)
        layers.update(avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(1),
                      fc=nn.Linear(features, num_classes))
        super().__init__(layers)


def scaled_width(base: int, width: float) -> int:
    return max(1, round(base * width))


def model_errors(cfg: TrainConfig) -> list[str]:
    """Every per-field rule the model fields of `cfg` break (empty when valid). Rules across
    fields live where they apply (e.g. `Scaled` rejects a fixed zero scale on the branch)."""
    return [msg for f in dataclasses.fields(cfg) if f.name in MODEL_FIELDS
            if (msg := knob_of(f).check(f.name, getattr(cfg, f.name))) is not None]


def make_stage(block: type[Block], inplanes: int, planes: int, blocks: int, stride: int,
               **factories: Callable) -> nn.Sequential:
    """`blocks` blocks; only the first changes resolution/channels (torchvision's `_make_layer`)."""
    layers = [block(inplanes, planes, stride, **factories)]
    layers += [block(planes * block.expansion, planes, 1, **factories) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def init_weights(model: nn.Module, zero_init_residual: bool) -> None:
    """Kaiming-normal (fan_out, ReLU) convs and unit norms as torchvision does; then, if asked,
    zero each block's `zero_init_layer` so every block starts as the identity (Goyal et al.
    2017: +0.2-0.3% top-1 for large-batch ResNet-50)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if not zero_init_residual:
        return
    for m in model.modules():
        if isinstance(m, Block) and (layer := m.zero_init_layer()) is not None:
            nn.init.zeros_(layer.weight)


def build_model(cfg: TrainConfig, num_classes: int, in_channels: int = 3) -> nn.Module:
    """The ResNet that the model fields of `cfg` describe, initialised (and loaded from
    `cfg.pretrained` when set)."""
    errors = model_errors(cfg)
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(value, int) or value < 1:
            errors.append(f"{name} is {value!r} but must be an int >= 1")
    if errors:
        raise ValueError("; ".join(errors))

    preset = PRESETS[cfg.depth]
    block = BLOCKS[cfg.block or preset.block]
    norm_layer = nn.BatchNorm2d
    factories = dict(
        conv3x3=block.conv3x3_factory(cfg.dynamic_kernels),
        norm_layer=norm_layer,
        merge=MERGES[cfg.residual].factory(scale=cfg.residual_scale,
                                           learnable=cfg.residual_learnable,
                                           target=cfg.residual_target, norm_layer=norm_layer),
        shortcut=shortcut_factory(cfg.shortcut, norm_layer),
    )
    widths = [scaled_width(w, cfg.width) for w in preset.widths]
    stem = STEMS[cfg.stem](in_channels, widths[0], norm_layer)
    stages, inplanes = [], widths[0]
    for i, (planes, blocks) in enumerate(zip(widths, preset.layers)):
        stages.append(make_stage(block, inplanes, planes, blocks, 1 if i == 0 else 2,
                                 **factories))
        inplanes = planes * block.expansion
    head = block.head_layers(inplanes, norm_layer)
    model = ResNet(stem, stages, head, inplanes, num_classes)
    init_weights(model, cfg.zero_init_residual)
    if cfg.pretrained:
        load_pretrained(model, cfg.pretrained)
    return model
