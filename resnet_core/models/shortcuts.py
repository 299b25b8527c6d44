"""Shortcuts for blocks that change shape (He et al. 2015, section 3.3).

Each shortcut owns its own parameters: article 000 re-used the branch's `conv1`/`bn1` on the
identity, which ties the shortcut to the branch's weights; that is never done here.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from resnet_core import names

NormLayer = Callable[[int], nn.Module]
ShortcutFactory = Callable[[int, int, int], nn.Module]


class Projection(nn.Sequential):
    """Option B: a separate 1x1 conv with the block's stride, then a norm. A Sequential so the
    names are torchvision's `downsample.0` / `downsample.1`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         norm_layer(out_channels))


class ZeroPad(nn.Module):
    """Option A (the CIFAR ResNet-20..110 of the paper): subsample by the stride, zero-pad the
    new channels. No parameters. `norm_layer` is accepted for a uniform constructor."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"shortcut is 'zeropad' but a block goes from {in_channels} to "
                             f"{out_channels} channels; zero-padding can only add channels")
        self.stride, self.extra = stride, out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra}"


SHORTCUTS: dict[str, type[nn.Module]] = names.registry(names.SHORTCUTS, {
    "projection": Projection,
    "zeropad": ZeroPad,
})


def shortcut_factory(name: str, norm_layer: NormLayer = nn.BatchNorm2d) -> ShortcutFactory:
    """`(in, out, stride) -> module`: the identity when the shape is unchanged, else the
    named shortcut."""
    if name not in SHORTCUTS:
        raise ValueError(f"shortcut is {name!r} but must be one of {list(SHORTCUTS)}")
    kind = SHORTCUTS[name]

    def make(in_channels: int, out_channels: int, stride: int) -> nn.Module:
        if stride == 1 and in_channels == out_channels:
            return nn.Identity()
        return kind(in_channels, out_channels, stride, norm_layer)

    return make
