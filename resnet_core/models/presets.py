"""Standard ResNet depths as rows of data (torchvision's `_resnet(block, layers)` pattern)."""

from __future__ import annotations

from dataclasses import dataclass

from resnet_core import names


@dataclass(frozen=True)
class Preset:
    """A stage layout: blocks per stage, base channels per stage, and the block the paper used.
    The stem's width is the first stage's width."""

    layers: tuple[int, ...]
    widths: tuple[int, ...]
    block: str


def _cifar(depth: int) -> Preset:
    # He et al. 2015, section 4.2: 6n+2 layers = stem conv + 3 stages x n basic blocks x 2 convs
    # + the classifier, on 16/32/64 channels.
    return Preset(layers=((depth - 2) // 6,) * 3, widths=(16, 32, 64), block="basic")


_IMAGENET_WIDTHS = (64, 128, 256, 512)

PRESETS: dict[int, Preset] = names.registry(names.DEPTHS, {
    **{depth: _cifar(depth) for depth in (20, 32, 44, 56, 110)},
    18: Preset((2, 2, 2, 2), _IMAGENET_WIDTHS, "basic"),
    34: Preset((3, 4, 6, 3), _IMAGENET_WIDTHS, "basic"),
    50: Preset((3, 4, 6, 3), _IMAGENET_WIDTHS, "bottleneck"),
    101: Preset((3, 4, 23, 3), _IMAGENET_WIDTHS, "bottleneck"),
    152: Preset((3, 8, 36, 3), _IMAGENET_WIDTHS, "bottleneck"),
})
