"""A loader that keeps the whole uint8 dataset on the training device.

CIFAR-10 as uint8 is 150 MB, so it fits next to the model; batches are then index ops on the
device with no worker processes, no PIL, no host-to-device copy per step (airbench's recipe,
see shared/PERFORMANCE.md). Geometric ops run on uint8 (4x less memory traffic than float),
then one pass converts and normalises.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch

from .augment import AugmentPolicy
from .mix import mix, plan_epoch
from .ops import random_crop_flip, random_erase
from .randaug import rand_augment


def epoch_generators(seed: int, epoch: int,
                     device: torch.device) -> tuple[torch.Generator, np.random.Generator]:
    """The two generators of one epoch, a pure function of (seed, epoch): resuming a run at
    epoch e replays exactly the batches it would have seen."""
    torch_seq, numpy_seq = np.random.SeedSequence([seed, epoch]).spawn(2)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(torch_seq.generate_state(1, np.uint64)[0]))
    return gen, np.random.default_rng(numpy_seq)


def _check(x: torch.Tensor, y: torch.Tensor, batch_size: int, mean: Sequence[float],
           std: Sequence[float], num_classes: int, drop_last: bool, seed: int) -> None:
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f"x is a {x.dtype} tensor of shape {tuple(x.shape)} but must be uint8 "
                         "(N, C, H, W)")
    if y.dim() != 1 or len(y) != len(x):
        raise ValueError(f"y has shape {tuple(y.shape)} but must be ({len(x)},), "
                         "one label per image")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size is {batch_size!r} but must be an integer >= 1")
    if drop_last and len(x) < batch_size:
        raise ValueError(f"batch_size is {batch_size} but the data has only {len(x)} examples; "
                         "with drop_last no batch would be produced")
    for name, values in (("mean", mean), ("std", std)):
        if len(values) != x.shape[1]:
            raise ValueError(f"{name} has {len(values)} values but the images have "
                             f"{x.shape[1]} channels")
    if min(std) <= 0:
        raise ValueError(f"std is {tuple(std)} but every value must be > 0")
    if num_classes < 1 or (len(y) and not 0 <= int(y.min()) <= int(y.max()) < num_classes):
        raise ValueError(f"labels must lie in [0, num_classes) but num_classes is {num_classes} "
                         f"and labels span [{int(y.min())}, {int(y.max())}]")
    if seed < 0:
        raise ValueError(f"seed is {seed} but must be >= 0")


class DeviceLoader:
    """Normalised, augmented batches of a device-resident uint8 dataset.

    `epoch(e)` yields (x, y): x of `dtype` (B, C, H, W), y int64 labels, or float32 soft
    targets (B, num_classes) when the policy mixes. With `policy_at(0)`, `shuffle=False` and
    `drop_last=False` it yields the plain normalised data in order (evaluation)."""

    def __init__(self, x_uint8: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                 device: str | torch.device, policy: AugmentPolicy, mean: Sequence[float],
                 std: Sequence[float], num_classes: int, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0, channels_last: bool = False,
                 dtype: torch.dtype = torch.float32) -> None:
        _check(x_uint8, y, batch_size, mean, std, num_classes, drop_last, seed)
        self.device = torch.device(device)
        self.x = x_uint8.to(self.device).contiguous()
        self.y = y.to(self.device, torch.int64)
        self.batch_size, self.policy, self.num_classes = batch_size, policy, num_classes
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.channels_last, self.dtype = channels_last, dtype
        shape = (1, len(mean), 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float64).view(shape)
        std_t = torch.tensor(std, dtype=torch.float64).view(shape)
        # (x / 255 - mean) / std as one multiply-add on the uint8 values
        self._scale = (1 / (255 * std_t)).float().to(self.device)
        self._shift = (-mean_t / std_t).float().to(self.device)

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch `epoch` (checked now, not at the first batch)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch is {epoch!r} but must be an integer >= 0")
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen, rng = epoch_generators(self.seed, epoch, self.device)
        n = len(self.x)
        order = (torch.randperm(n, device=self.device, generator=gen) if self.shuffle
                 else torch.arange(n, device=self.device))
        batches = len(self)
        plans = (plan_epoch(self.policy, batches, tuple(self.x.shape[2:]), rng)
                 if self.policy.mixes else [None] * batches)
        for i, plan in enumerate(plans):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x, y = self._augment(self.x[idx], gen), self.y[idx]
            if plan is not None:
                x, y = mix(x, y, self.num_classes, plan)
            memory_format = torch.channels_last if self.channels_last else torch.preserve_format
            yield x.to(self.dtype, memory_format=memory_format), y

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """uint8 batch -> normalised float32 batch, augmented per the policy."""
        p = self.policy
        if p.crop_padding > 0 or p.flip_prob > 0:
            x = random_crop_flip(x, p.crop_padding, p.flip_prob, p.crop_fill, gen)
        x = x.float()
        if p.randaug_ops > 0:
            x = rand_augment(x.div_(255), p.randaug_ops, p.randaug_magnitude, gen).mul_(255)
        x = x.mul_(self._scale).add_(self._shift)
        if p.erase_prob > 0:
            x = random_erase(x, p.erase_prob, p.erase_scale, gen)
        return x
