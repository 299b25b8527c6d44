"""Residual blocks. Every block is assembled from factories, never from boolean flags:

- `conv3x3(in, out, stride)`  the 3x3 conv (plain, or dynamic for `DynamicBlock`)
- `norm_layer(channels)`      the normalization
- `merge(channels)`           how branch and identity combine (merges.py)
- `shortcut(in, out, stride)` the identity path (shortcuts.py; nn.Identity when shape is kept)

Names follow torchvision (`conv1`, `bn1`, ..., `downsample`) so its state_dicts load. Each block
names, via `zero_init_layer`, the layer whose weight the builder zeroes so that the block starts
as the identity (Goyal et al. 2017, "zero-init the last BN of each residual block").
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Callable, Optional

import torch
from torch import nn

from resnet_core import names

from .dynamic_conv import DynamicConv2d
from .merges import Add, Merge
from .shortcuts import shortcut_factory

Conv3x3 = Callable[[int, int, int], nn.Module]
NormLayer = Callable[[int], nn.Module]


def plain_conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def dynamic_conv3x3(in_channels: int, out_channels: int, stride: int = 1, *,
                    kernels: int = 4) -> nn.Module:
    return DynamicConv2d(in_channels, out_channels, 3, stride=stride, padding=1, K=kernels)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class Block(nn.Module):
    """What every block offers the builder (class-level data, not per-instance flags)."""

    expansion = 1

    @staticmethod
    def conv3x3_factory(dynamic_kernels: int) -> Conv3x3:
        """The 3x3 conv this block type is made of; only `DynamicBlock` uses the kernels."""
        return plain_conv3x3

    @staticmethod
    def head_layers(channels: int, norm_layer: NormLayer) -> OrderedDict[str, nn.Module]:
        """Layers a stack of these blocks needs before global pooling."""
        return OrderedDict()

    def zero_init_layer(self) -> Optional[nn.Module]:
        raise NotImplementedError


_PROJECTION = shortcut_factory("projection")


class BasicBlock(Block):
    """Two 3x3 convs (He et al. 2015), ReLU after the merge."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *,
                 conv3x3: Conv3x3 = plain_conv3x3, norm_layer: NormLayer = nn.BatchNorm2d,
                 merge: Callable[[int], Merge] = Add,
                 shortcut: Callable[[int, int, int], nn.Module] = _PROJECTION) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1)
        self.bn2 = norm_layer(planes)
        self.downsample = shortcut(inplanes, planes, stride)
        self.merge = merge(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(self.merge(branch, self.downsample(x)))

    def zero_init_layer(self) -> Optional[nn.Module]:
        return self.merge.zero_init_layer(self.bn2)


class DynamicBlock(BasicBlock):
    """A BasicBlock whose two 3x3 convs are dynamic convolutions (Chen et al. 2020)."""

    @staticmethod
    def conv3x3_factory(dynamic_kernels: int) -> Conv3x3:
        return partial(dynamic_conv3x3, kernels=dynamic_kernels)


class Bottleneck(Block):
    """1x1 reduce, 3x3, 1x1 expand (x4). The stride sits on the 3x3 conv as in torchvision
    ("ResNet v1.5"), which is what torchvision's weights expect."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *,
                 conv3x3: Conv3x3 = plain_conv3x3, norm_layer: NormLayer = nn.BatchNorm2d,
                 merge: Callable[[int], Merge] = Add,
                 shortcut: Callable[[int, int, int], nn.Module] = _PROJECTION) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, out)
        self.bn3 = norm_layer(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(inplanes, out, stride)
        self.merge = merge(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        branch = self.bn3(self.conv3(out))
        return self.relu(self.merge(branch, self.downsample(x)))

    def zero_init_layer(self) -> Optional[nn.Module]:
        return self.merge.zero_init_layer(self.bn3)


class PreActBlock(Block):
    """He et al. 2016, "Identity Mappings in Deep Residual Networks": BN-ReLU-conv twice and
    no activation after the merge, so the identity path is a clean sum through the network.

    There is no BN after the last conv, so zero-init zeroes `conv2`'s weight: the branch then
    outputs 0 and every branch weight still gets gradient from step 1 on. (Zeroing `bn2` instead
    would feed ReLU exact zeros, whose gradient is 0: that branch would never train.)
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *,
                 conv3x3: Conv3x3 = plain_conv3x3, norm_layer: NormLayer = nn.BatchNorm2d,
                 merge: Callable[[int], Merge] = Add,
                 shortcut: Callable[[int, int, int], nn.Module] = _PROJECTION) -> None:
        super().__init__()
        self.bn1 = norm_layer(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, 1)
        self.downsample = shortcut(inplanes, planes, stride)
        self.merge = merge(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        # A shape-changing shortcut sees the pre-activated input, as in the paper's code
        # (fb.resnet.torch preresnet.lua); an unchanged identity stays the raw input.
        identity = x if isinstance(self.downsample, nn.Identity) else self.downsample(pre)
        branch = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        return self.merge(branch, identity)

    @staticmethod
    def head_layers(channels: int, norm_layer: NormLayer) -> OrderedDict[str, nn.Module]:
        # The last block's sum is not normalized or activated; the paper adds BN-ReLU here.
        return OrderedDict(final_bn=norm_layer(channels), final_relu=nn.ReLU(inplace=True))

    def zero_init_layer(self) -> Optional[nn.Module]:
        return self.merge.zero_init_layer(self.conv2)


BLOCKS: dict[str, type[Block]] = names.registry(names.BLOCKS, {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "preact": PreActBlock,
    "dynamic": DynamicBlock,
})
