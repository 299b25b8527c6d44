"""RandAugment-style ops (Cubuk et al. 2020) as batched tensor ops with per-sample op choice.

Each op maps float images in [0, 1] of shape (n, C, H, W) and a per-sample signed magnitude
m in [-1, 1] to images in [0, 1]; |m| = 0 leaves an image unchanged. The ranges follow
torchvision's RandAugment (enhance factors 1 +/- 0.9, posterize down to 4 bits, solarize
threshold from 1 to 0), except translation, capped at 30% of the side for 32x32 inputs.
Only ops that are cheap elementwise or index ops are included: they run on the accelerator next
to the model, so the GPU never waits for CPU workers.
"""

from __future__ import annotations

from typing import Callable

import torch

from .ops import shift_flip


def _view(m: torch.Tensor) -> torch.Tensor:
    return m[:, None, None, None]


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """torchvision's, imported on first use: a policy without it never loads torchvision
    (resnet_core/data/sources.py says what that costs each process)."""
    from torchvision.transforms.v2.functional import autocontrast as theirs

    return theirs(x)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    r, g, b = x.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)  # ITU-R 601-2, as PIL and torchvision


def _blend(x: torch.Tensor, base: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (base + (x - base) * (1 + 0.9 * _view(m))).clamp(0, 1)


def _translate(x: torch.Tensor, m: torch.Tensor, axis: int) -> torch.Tensor:
    bound = 0.3 * x.shape[2 + axis]
    pixels = (bound * m).round().long()
    zero = torch.zeros_like(pixels)
    return shift_flip(x, pixels if axis == 0 else zero, pixels if axis == 1 else zero,
                      bound=round(bound))


def _posterize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    step = _view(torch.exp2((4 * m.abs()).round()))  # 2^(8 - bits kept)
    # round first: x * 255 of a uint8 level can land just below the integer
    return torch.floor((x * 255).round() / step) * step / 255


RANDAUG_OPS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "identity": lambda x, m: x,
    "brightness": lambda x, m: _blend(x, torch.zeros_like(x), m),
    "contrast": lambda x, m: _blend(x, _gray(x).mean((1, 2, 3), keepdim=True), m),
    "color": lambda x, m: _blend(x, _gray(x), m),
    "solarize": lambda x, m: torch.where(x > 1 - _view(m.abs()), 1 - x, x),
    "posterize": _posterize,
    "autocontrast": lambda x, m: torch.where(_view(m != 0), autocontrast(x), x),
    "translate_x": lambda x, m: _translate(x, m, axis=1),
    "translate_y": lambda x, m: _translate(x, m, axis=0),
}


def rand_augment(x: torch.Tensor, ops: int, magnitude: float,
                 gen: torch.Generator) -> torch.Tensor:
    """Apply `ops` rounds; in each, every sample draws one op and a sign for `magnitude`.

    Every op runs on the whole batch and `where` keeps each sample's choice: a few cheap
    elementwise passes cost less than the device syncs that gathering sub-batches would need."""
    n = x.shape[0]
    names = list(RANDAUG_OPS)
    for _ in range(ops):
        choice = torch.randint(len(names), (n,), device=x.device, generator=gen)
        sign = torch.rand(n, device=x.device, generator=gen) < 0.5
        m = torch.where(sign, -magnitude, magnitude).to(x.dtype)
        out = x
        for k, name in enumerate(names[1:], start=1):
            out = torch.where(_view(choice == k), RANDAUG_OPS[name](x, m), out)
        x = out
    return x
