"""The strength table, its overrides, and the batched device-side ops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resnet_core.config import TrainConfig
from resnet_core.data.augment import AugmentPolicy, policy_at, policy_from_config
from resnet_core.data.mix import MixPlan, mix, plan_epoch
from resnet_core.data.ops import random_crop_flip, random_erase, shift_flip
from resnet_core.data.randaug import RANDAUG_OPS, rand_augment

TABLE = [  # strength, expected policy fields
    (0.0, dict(crop_padding=0, flip_prob=0.0, erase_prob=0.0, erase_scale=0.25, randaug_ops=0,
               randaug_magnitude=0.0, mixup_alpha=0.0, cutmix_alpha=0.0)),
    (0.5, dict(crop_padding=4, flip_prob=0.5, erase_prob=0.25, erase_scale=0.25, randaug_ops=1,
               randaug_magnitude=0.5, mixup_alpha=0.0, cutmix_alpha=0.0)),
    (1.0, dict(crop_padding=8, flip_prob=0.5, erase_prob=0.5, erase_scale=0.25, randaug_ops=2,
               randaug_magnitude=1.0, mixup_alpha=0.4, cutmix_alpha=0.0)),
    (0.75, dict(crop_padding=6, flip_prob=0.5, erase_prob=0.375, erase_scale=0.25, randaug_ops=2,
                randaug_magnitude=0.75, mixup_alpha=0.2, cutmix_alpha=0.0)),
]


@pytest.mark.parametrize("strength,expected", TABLE)
def test_policy_table(strength, expected):
    policy = policy_at(strength)
    got = {k: getattr(policy, k) for k in expected}
    assert got == pytest.approx(expected)
    assert isinstance(policy.crop_padding, int) and isinstance(policy.randaug_ops, int)


def test_strength_zero_is_identity():
    assert policy_at(0) == AugmentPolicy()
    assert policy_at(0).is_identity and not policy_at(0.01).is_identity


@pytest.mark.parametrize("override,value", [
    ("crop_padding", 2), ("flip_prob", 0.0), ("erase_prob", 0.9), ("randaug_ops", 3),
    ("randaug_magnitude", 0.1), ("mixup_alpha", 1.0), ("cutmix_alpha", 1.0), ("crop_fill", "zeros"),
])
def test_overrides_win_and_none_keeps_table(override, value):
    assert getattr(policy_at(0.5, **{override: value}), override) == value
    assert policy_at(0.5, **{override: None}) == policy_at(0.5)


def test_policy_from_config_uses_strength_and_pinned_fields():
    cfg = TrainConfig(augment=1.0, crop_padding=2, mixup_alpha=0.0)
    assert policy_from_config(cfg) == dataclasses.replace(policy_at(1.0), crop_padding=2,
                                                          mixup_alpha=0.0)


@pytest.mark.parametrize("strength,overrides,message", [
    (1.5, {}, "augment is 1.5 but must be a number in [0, 1]"),
    (-0.1, {}, "augment is -0.1"),
    (float("nan"), {}, "augment is nan"),
    (0.5, {"flip_prob": 1.5}, "flip_prob is 1.5 but must be <= 1"),
    (0.5, {"crop_padding": 2.5}, "crop_padding is 2.5 but must be an integer"),
    (0.5, {"crop_padding": -1}, "crop_padding is -1 but must be >= 0"),
    (0.5, {"randaug_ops": 9}, "randaug_ops is 9 but must be <= 4"),
    (0.5, {"mixup_alpha": float("inf")}, "mixup_alpha is inf but must be finite"),
    (0.5, {"crop_fill": "edge"}, "crop_fill is 'edge' but must be one of"),
    (0.5, {"erase_scal": 0.1}, "override 'erase_scal' is not a parameter"),
])
def test_bad_strength_or_override_is_a_clear_error(strength, overrides, message):
    with pytest.raises(ValueError) as err:
        policy_at(strength, **overrides)
    assert message in str(err.value)


def test_shift_flip_matches_torch_padding_then_crop():
    x = torch.randint(0, 256, (6, 3, 7, 9), dtype=torch.uint8)
    dy, dx = torch.tensor([-3, 0, 3, 1, -2, 2]), torch.tensor([3, -3, 0, 2, -1, 1])
    flip = torch.tensor([True, False, True, False, True, False])
    for fill, mode in (("reflect", "reflect"), ("zeros", "constant")):
        padded = F.pad(x.float(), (3, 3, 3, 3), mode=mode).to(torch.uint8)
        out = shift_flip(x, dy, dx, flip, fill)
        for b in range(6):
            src = padded[b].flip(-1) if flip[b] else padded[b]
            top, left = 3 + dy[b], 3 + (-dx[b] if flip[b] else dx[b])
            expected = src[:, top:top + 7, left:left + 9]
            assert torch.equal(out[b], expected), (fill, b)


def test_crop_flip_is_random_per_sample_and_keeps_dtype():
    one = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    out = random_crop_flip(one.expand(64, -1, -1, -1), 4, 0.5, "reflect",
                           torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == (64, 3, 16, 16)
    assert len({o.numpy().tobytes() for o in out}) > 32


def test_random_erase_areas_and_probability():
    x = torch.ones(2000, 3, 32, 32)
    out = random_erase(x, 0.5, 0.25, torch.Generator().manual_seed(0))
    erased = (out == 0).all(1).float().mean((1, 2))
    hit = erased > 0
    assert 0.4 < hit.float().mean() < 0.6
    assert erased[hit].min() >= 0.01 and erased[hit].max() <= 0.27
    assert torch.equal(out[~hit], x[~hit])


@pytest.mark.parametrize("name", list(RANDAUG_OPS))
def test_randaug_op_zero_magnitude_is_identity_and_range_holds(name):
    x = torch.randint(0, 256, (8, 3, 12, 12)).float() / 255
    op = RANDAUG_OPS[name]
    assert torch.allclose(op(x, torch.zeros(8)), x, atol=1e-6)
    out = op(x, torch.linspace(-1, 1, 8))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", [n for n in RANDAUG_OPS if n != "identity"])
def test_randaug_op_changes_images_at_full_magnitude(name):
    x = torch.rand(4, 3, 12, 12) * 0.8 + 0.1
    assert not torch.allclose(RANDAUG_OPS[name](x, torch.ones(4)), x)


def test_posterize_full_magnitude_keeps_four_bits():
    x = torch.arange(256).float().view(1, 1, 16, 16) / 255
    levels = (RANDAUG_OPS["posterize"](x, torch.ones(1)) * 255).round().unique()
    assert levels.tolist() == [16.0 * k for k in range(16)]


def test_rand_augment_chooses_ops_per_sample():
    one = torch.rand(1, 3, 12, 12) * 0.8 + 0.1
    out = rand_augment(one.expand(32, -1, -1, -1), 1, 1.0, torch.Generator().manual_seed(0))
    assert len({o.numpy().round(5).tobytes() for o in out}) > 4


@pytest.mark.parametrize("mixup,cutmix", [(1.0, 0.0), (0.0, 1.0), (0.4, 0.4)])
def test_mix_soft_targets_sum_to_one_and_match_pixels(mixup, cutmix):
    policy = AugmentPolicy(mixup_alpha=mixup, cutmix_alpha=cutmix)
    plans = plan_epoch(policy, 20, (16, 16), np.random.default_rng(0))
    assert any(p.box is None for p in plans) == (mixup > 0)
    assert any(p.box is not None for p in plans) == (cutmix > 0)
    x = torch.stack([torch.zeros(3, 16, 16), torch.ones(3, 16, 16)])
    y = torch.tensor([0, 2])
    for plan in plans:
        mixed, target = mix(x, y, 4, plan)
        assert target.shape == (2, 4) and target.dtype == torch.float32
        assert torch.allclose(target.sum(1), torch.ones(2))
        # image 0 is black, image 1 white: the mean of image 0 is exactly its share of image 1
        assert mixed[0].mean().item() == pytest.approx(target[0, 2].item(), abs=1e-6)


def test_mix_plan_is_deterministic_per_seed():
    policy = AugmentPolicy(mixup_alpha=0.4, cutmix_alpha=1.0)
    a = plan_epoch(policy, 5, (32, 32), np.random.default_rng(7))
    assert a == plan_epoch(policy, 5, (32, 32), np.random.default_rng(7))
    assert a != plan_epoch(policy, 5, (32, 32), np.random.default_rng(8))


def test_mixplan_lam_one_leaves_batch_unchanged():
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    mixed, target = mix(x, y, 4, MixPlan(lam=1.0))
    assert torch.equal(mixed, x) and torch.equal(target, torch.eye(4))
