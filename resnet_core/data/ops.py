"""Batched, device-side geometric ops with per-sample randomness and no loop over samples.

Random crop, translation and flip are all one `gather` with per-sample source indices: padding
is folded into the index arithmetic (reflection or a zero mask), so no padded copy of the batch
is made (the same idea as airbench's GPU-resident crops). They work on uint8 and float alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _reflect(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Reflection without repeating the edge (torch's "reflect"), valid for any offset."""
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= size, period - idx, idx)


def shift_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
               flip: torch.Tensor | None = None, fill: str = "zeros",
               bound: int | None = None) -> torch.Tensor:
    """out[b, :, i, j] = x[b, :, i + dy[b], j' + dx[b]], with j' = W-1-j where flip[b].

    Source pixels outside the image are reflected (fill="reflect") or zero (fill="zeros").
    A random crop of a p-padded image is exactly a shift by offsets drawn from [-p, p].
    `bound` >= every |offset| lets zero fill pad by only that much (default: the image size).
    """
    b, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] + dy[:, None]
    cols = torch.arange(w, device=x.device)[None, :]
    if flip is not None:
        cols = torch.where(flip[:, None], w - 1 - cols, cols)
    cols = cols + dx[:, None]
    if fill == "reflect":
        rows, cols = _reflect(rows, h), _reflect(cols, w)
    else:
        # one zero-padded copy is cheaper than masking the gathered batch (measured on CPU)
        pad = max(h, w) if bound is None else bound
        x = F.pad(x, (pad, pad, pad, pad))
        rows = (rows + pad).clamp(0, h + 2 * pad - 1)
        cols = (cols + pad).clamp(0, w + 2 * pad - 1)
        h, w = h + 2 * pad, w + 2 * pad
    index = (rows[:, :, None] * w + cols[:, None, :]).reshape(b, 1, -1).expand(b, c, -1)
    return x.reshape(b, c, h * w).gather(2, index).view(b, c, rows.shape[1], cols.shape[1])


def random_crop_flip(x: torch.Tensor, padding: int, flip_prob: float, fill: str,
                     gen: torch.Generator) -> torch.Tensor:
    """Per-sample random crop (padding p) and horizontal flip in one gather."""
    b = x.shape[0]
    dy = torch.randint(-padding, padding + 1, (b,), device=x.device, generator=gen)
    dx = torch.randint(-padding, padding + 1, (b,), device=x.device, generator=gen)
    flip = torch.rand(b, device=x.device, generator=gen) < flip_prob
    return shift_flip(x, dy, dx, flip, fill, bound=padding)


def random_erase(x: torch.Tensor, prob: float, max_area: float, gen: torch.Generator,
                 value: float = 0.0) -> torch.Tensor:
    """Random erasing (Zhong et al. 2020) per sample: with probability `prob`, a rectangle of
    area fraction U(0.02, max_area) and aspect ratio log-U(0.3, 3.3) is set to `value`.

    Applied after normalisation, value 0 is the dataset mean colour (Cutout's choice)."""
    b, _, h, w = x.shape
    dev = x.device
    u = torch.rand(5, b, device=dev, generator=gen)
    low = min(0.02, max_area)
    area = (low + (max_area - low) * u[0]) * h * w
    ratio = torch.exp(math.log(0.3) + u[1] * math.log(3.3 / 0.3))
    eh = torch.sqrt(area * ratio).round().clamp(1, h).long()
    ew = torch.sqrt(area / ratio).round().clamp(1, w).long()
    top = (u[2] * (h - eh + 1)).long()
    left = (u[3] * (w - ew + 1)).long()
    rows = torch.arange(h, device=dev)[None, :]
    cols = torch.arange(w, device=dev)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & (u[4] < prob)[:, None, None]
    return x.masked_fill(mask[:, None], value)
