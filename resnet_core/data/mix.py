"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) with soft targets.

Each batch is mixed with itself reversed (timm's pairing: free, and the batch order is already
shuffled). The mixing coefficient and the CutMix box are per batch, drawn ahead of the epoch
from a numpy generator (torch has no seeded Beta sampler), so the device never syncs for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .augment import AugmentPolicy


@dataclass(frozen=True)
class MixPlan:
    """One batch's mixing: `lam` of the original, `box` (top, left, bottom, right) for CutMix."""

    lam: float
    box: tuple[int, int, int, int] | None = None


def plan_epoch(policy: AugmentPolicy, batches: int, size: tuple[int, int],
               rng: np.random.Generator) -> list[MixPlan]:
    """The mixing of every batch of an epoch. With both alphas on, each batch picks one method
    with probability 1/2 (timm's switch)."""
    h, w = size
    plans = []
    for _ in range(batches):
        use_cutmix = policy.cutmix_alpha > 0 and (policy.mixup_alpha <= 0 or rng.random() < 0.5)
        if not use_cutmix:
            plans.append(MixPlan(lam=float(rng.beta(policy.mixup_alpha, policy.mixup_alpha))))
            continue
        lam = rng.beta(policy.cutmix_alpha, policy.cutmix_alpha)
        cut = np.sqrt(1 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        top, bottom = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        left, right = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        # the box is clipped at the border, so the label weight follows the area actually pasted
        lam = 1 - (bottom - top) * (right - left) / (h * w)
        plans.append(MixPlan(lam=float(lam), box=(top, left, bottom, right)))
    return plans


def mix(x: torch.Tensor, y: torch.Tensor, num_classes: int,
        plan: MixPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixed images and soft targets (B, num_classes) that sum to 1."""
    onehot = torch.nn.functional.one_hot(y, num_classes).float()
    target = plan.lam * onehot + (1 - plan.lam) * onehot.flip(0)
    if plan.box is None:
        return x * plan.lam + x.flip(0) * (1 - plan.lam), target
    top, left, bottom, right = plan.box
    x = x.clone()
    x[:, :, top:bottom, left:right] = x.flip(0)[:, :, top:bottom, left:right]
    return x, target
