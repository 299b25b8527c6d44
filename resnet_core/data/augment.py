"""Augmentation strength: one scalar s in [0, 1] that sets every augmentation parameter.

A sampler explores one smooth axis (`augment`) instead of seven coupled ones; any parameter can
still be pinned by its own TrainConfig field (an override). The mapping is `STRENGTH_TABLE`:

    parameter          value at strength s                     s=0   s=0.5   s=1
    crop_padding       floor(8 s + 0.5) pixels                 0     4       8
    flip_prob          0.5 if s > 0 else 0                     0     0.5     0.5
    erase_prob         0.5 s                                   0     0.25    0.5
    erase_scale        0.25 (constant: the area cap)           0.25  0.25    0.25
    randaug_ops        floor(2 s + 0.5)                        0     1       2
    randaug_magnitude  s                                       0     0.5     1
    mixup_alpha        0.4 max(0, 2 s - 1)                     0     0       0.4
    cutmix_alpha       0 (override only)                       0     0       0

Why these numbers: s = 0.5 with padding 4 and flips is the classic CIFAR recipe (He et al. 2016;
article 000). Cutout's 16x16 patch on 32x32 images is a quarter of the area (DeVries & Taylor
2017), hence the erase area cap; RandAugment's usual N is 2 (Cubuk et al. 2020). Mixup only starts
above s = 0.5 because it slows convergence in the short trials a search runs; alpha 0.4 is in the
range Zhang et al. found best for CIFAR. Cutmix is off in the table: timm alternates mixup and
cutmix when both are on, which is a choice the user should make explicitly.

Strength 0 is the identity: every probability, count and alpha is 0 (erase_scale only shapes the
erased area and does nothing while erase_prob is 0). When overriding `randaug_ops` at low
strength, override `randaug_magnitude` too, or the ops run at (near) zero magnitude.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from ..config import TrainConfig, knob_of

CROP_FILLS = ("reflect", "zeros")


@dataclass(frozen=True)
class AugmentPolicy:
    """Every augmentation parameter of a training run. The defaults are the identity."""

    crop_padding: int = 0
    flip_prob: float = 0.0
    erase_prob: float = 0.0
    erase_scale: float = 0.25
    randaug_ops: int = 0
    randaug_magnitude: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    # airbench pads by reflection; torchvision's RandomCrop(padding=4) (the tutorial) by zeros.
    crop_fill: str = "reflect"

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            if (problem := _problem(name, value)) is not None:
                raise ValueError(problem)

    @property
    def mixes(self) -> bool:
        """Whether batches carry soft targets (mixup or cutmix on)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def is_identity(self) -> bool:
        return (self.crop_padding == 0 and self.flip_prob == 0 and self.erase_prob == 0
                and self.randaug_ops == 0 and not self.mixes)


STRENGTH_TABLE: dict[str, Callable[[float], Any]] = {
    "crop_padding": lambda s: math.floor(8 * s + 0.5),
    "flip_prob": lambda s: 0.5 if s > 0 else 0.0,
    "erase_prob": lambda s: 0.5 * s,
    "erase_scale": lambda s: 0.25,
    "randaug_ops": lambda s: math.floor(2 * s + 0.5),
    "randaug_magnitude": lambda s: float(s),
    "mixup_alpha": lambda s: 0.4 * max(0.0, 2 * s - 1),
    "cutmix_alpha": lambda s: 0.0,
}

# The TrainConfig fields that pin one parameter; their Knob bounds are the validation rules.
OVERRIDES = ("crop_padding", "flip_prob", "erase_prob", "randaug_ops", "randaug_magnitude",
             "mixup_alpha", "cutmix_alpha")
_INT_FIELDS = ("crop_padding", "randaug_ops")
_KNOBS = {f.name: knob_of(f) for f in dataclasses.fields(TrainConfig) if f.name in OVERRIDES}


def _problem(name: str, value: Any) -> str | None:
    """Why `value` is invalid for policy field `name`, or None."""
    if name == "crop_fill":
        return (None if value in CROP_FILLS
                else f"crop_fill is {value!r} but must be one of {list(CROP_FILLS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} is {value!r} but must be a number"
    if name in _INT_FIELDS and value != int(value):
        return f"{name} is {value!r} but must be an integer"
    if not math.isfinite(value):
        return f"{name} is {value!r} but must be finite"
    if name == "erase_scale":
        return None if 0 < value <= 1 else f"erase_scale is {value!r} but must be in (0, 1]"
    return _KNOBS[name].check(name, value)


def policy_at(strength: float, **overrides: Any) -> AugmentPolicy:
    """The policy at `strength` (module table), with non-None `overrides` replacing entries."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) \
            or not 0 <= strength <= 1:
        raise ValueError(f"augment is {strength!r} but must be a number in [0, 1]")
    unknown = sorted(set(overrides) - set(OVERRIDES) - {"crop_fill"})
    if unknown:
        raise ValueError(f"augmentation override {unknown[0]!r} is not a parameter; "
                         f"valid overrides are {list(OVERRIDES) + ['crop_fill']}")
    values = {name: rule(float(strength)) for name, rule in STRENGTH_TABLE.items()}
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name in _INT_FIELDS:
        if _problem(name, values[name]) is None:
            values[name] = int(values[name])
    return AugmentPolicy(**values)


def policy_from_config(cfg: TrainConfig) -> AugmentPolicy:
    """The policy a TrainConfig asks for: its `augment` strength plus its pinned fields."""
    return policy_at(cfg.augment, **{name: getattr(cfg, name) for name in OVERRIDES})
