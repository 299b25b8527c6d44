"""Input stems. Each returns named layers that the ResNet places at its top level, under
torchvision's names (`conv1`, `bn1`, `relu`, `maxpool`), so torchvision state_dicts load."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from torch import nn

from resnet_core import names

NormLayer = Callable[[int], nn.Module]


def cifar_stem(in_channels: int, out_channels: int,
               norm_layer: NormLayer = nn.BatchNorm2d) -> OrderedDict[str, nn.Module]:
    """He et al. 2015, section 4.2: one 3x3 conv at full resolution for 32x32 inputs."""
    return OrderedDict(
        conv1=nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False),
        bn1=norm_layer(out_channels),
        relu=nn.ReLU(inplace=True),
    )


def imagenet_stem(in_channels: int, out_channels: int,
                  norm_layer: NormLayer = nn.BatchNorm2d) -> OrderedDict[str, nn.Module]:
    """torchvision's stem: 7x7 conv stride 2, BN, ReLU, 3x3 max-pool stride 2 (4x smaller)."""
    return OrderedDict(
        conv1=nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False),
        bn1=norm_layer(out_channels),
        relu=nn.ReLU(inplace=True),
        maxpool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )


STEMS: dict[str, Callable[..., OrderedDict[str, nn.Module]]] = names.registry(names.STEMS, {
    "cifar": cifar_stem,
    "imagenet": imagenet_stem,
})
