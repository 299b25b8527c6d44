"""The dataset registry and the one way to load a dataset into train/validation/test splits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..config import DataConfig, config_errors
from .. import names
from .sources import (DatasetMissingError, DatasetUnreadableError, Raw, cifar10, cifar100, digits,
                      imagefolder, synthetic)

__all__ = ["DATASETS", "DataSplits", "DatasetMissingError", "DatasetUnreadableError", "load_data",
           "split_indices", "channel_stats"]

DATASETS: dict[str, Callable[[DataConfig], Raw]] = names.registry(names.DATASETS, {
    "cifar10": cifar10,
    "cifar100": cifar100,
    "imagefolder": imagefolder,
    "digits": digits,
    "synthetic": synthetic,
})


@dataclass
class DataSplits:
    """x: uint8 (N, C, H, W) contiguous on the CPU; y: int64. mean/std: per channel, in 0..1
    units, from the train split only (statistics of held-out data must not leak into training).
    The validation split is empty for a final training on train+validation (`load_data`)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str


def split_indices(n: int, val_fraction: float, seed: int,
                  subset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices of n examples, sorted, a pure function of its arguments.
    `subset` caps the train indices after the split, so val never depends on it."""
    n_val = max(1, round(val_fraction * n))
    if n - n_val < 1:
        raise ValueError(f"val_fraction is {val_fraction} but with {n} training examples it "
                         f"leaves no example to train on")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    if subset is not None:
        train = train[:subset]
    return train.sort().values, val.sort().values


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (0..1 units) of uint8 images, from 256-bin histograms
    (no float copy of the dataset: CIFAR-10 as float32 would be 600 MB)."""
    levels = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).double()
        p = counts / counts.sum()
        mean = float((p * levels).sum())
        var = float((p * (levels - mean) ** 2).sum())
        means.append(mean)
        # a constant channel (blank scans) would divide by zero; 1/255 is one grey level
        stds.append(max(math.sqrt(var), 1 / 255))
    return tuple(means), tuple(stds)


def load_data(cfg: DataConfig, validation: bool = True) -> DataSplits:
    """Read `cfg.dataset` and split it: validation is held out of the train split by
    `split_seed`; the dataset's test split is kept for the final test only.

    `validation=False` is for the final training of a chosen config: the validation examples
    (the same ones a search held out) join the training split, which leaves the validation
    split empty; nothing is left to select on, so the test split is all that measures it."""
    errors = config_errors(cfg)
    if errors:
        raise ValueError("; ".join(errors))
    raw = DATASETS[cfg.dataset](cfg)
    train, val = split_indices(len(raw.train_x), cfg.val_fraction, cfg.split_seed, cfg.subset)
    if not validation:
        train, val = torch.cat([train, val]).sort().values, val[:0]
    train_x = raw.train_x[train].contiguous()
    mean, std = channel_stats(train_x)
    return DataSplits(
        train_x=train_x, train_y=raw.train_y[train],
        val_x=raw.train_x[val].contiguous(), val_y=raw.train_y[val],
        test_x=raw.test_x.contiguous(), test_y=raw.test_y,
        num_classes=raw.num_classes, mean=mean, std=std, name=cfg.dataset)
