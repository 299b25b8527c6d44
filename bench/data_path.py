"""Augmented batches per second: our DeviceLoader vs the pipeline users start from.

The baseline is Ray Tune's PyTorch CIFAR tutorial: a dataset of PIL images with
RandomCrop(32, padding=4) + RandomHorizontalFlip() + ToTensor() + Normalize, through
DataLoader(batch_size=128, shuffle=True, num_workers=2). Ours runs the same augmentations
(crop padding 4 with zero fill as RandomCrop's default, flip 0.5, nothing else) on the same
synthetic CIFAR-shaped uint8 images with the same batch size. The unit of work is one epoch, as
a trial sees it: the tutorial's loader starts its workers every epoch (persistent_workers is
False by default), and ours is built once per trial, so neither counts set-up outside the epoch.

    python -m bench.data_path                 # CPU (target >= 10x)
    python -m bench.data_path --device cuda   # GPU box: needs only torch and torchvision

Writes bench/results/data_path_<device>.json and prints one ratio line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `bench` and `resnet_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from bench.common import RESULTS, alternate, median, provenance, ratio_line, write_result
from resnet_core.data import DeviceLoader, policy_at
from resnet_core.data.datasets import channel_stats

TARGET = {"cpu": 10.0, "cuda": 3.0}


class PILImages(Dataset):
    """A torchvision-style dataset (like CIFAR10): uint8 HWC arrays handed out as PIL images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def tutorial_epoch(images, labels, mean, std, batch_size, workers, device):
    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(mean, std)])
    loader = DataLoader(PILImages(images, labels, transform), batch_size=batch_size,
                        shuffle=True, num_workers=workers)

    def run() -> int:
        batches = 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            batches += 1
        return batches

    return run, len(loader)


def ours_epoch(images, labels, mean, std, batch_size, device):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    policy = policy_at(0, crop_padding=4, flip_prob=0.5, crop_fill="zeros")
    loader = DeviceLoader(x, torch.from_numpy(labels), batch_size=batch_size, device=device,
                          policy=policy, mean=mean, std=std, num_classes=10, drop_last=False)
    epoch = iter(range(10**9))

    def run() -> int:
        return sum(1 for _ in loader.epoch(next(epoch)))

    return run, len(loader)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result JSON")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of this process (ours runs here; each tutorial "
                             "worker already runs with 1, DataLoader's default in workers)")
    args = parser.parse_args(argv)
    # Batches of small ops gain nothing from intra-op threads, and on a shared machine
    # (2 cores, other jobs) two threads made ours 3-10x slower (measured): spin-waits.
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    mean, std = channel_stats(torch.from_numpy(images).permute(0, 3, 1, 2))
    ours, n_ours = ours_epoch(images, labels, mean, std, args.batch_size, args.device)
    base, n_base = tutorial_epoch(images, labels, mean, std, args.batch_size, args.workers,
                                  args.device)
    times = alternate({"ours": ours, "tutorial": base}, repeats=args.repeats,
                      warmup=args.warmup, device=args.device)
    ours_rate, base_rate = n_ours / median(times["ours"]), n_base / median(times["tutorial"])
    result = {
        "ours_batches_per_s": ours_rate, "tutorial_batches_per_s": base_rate,
        "ratio": ours_rate / base_rate, "target_ratio": TARGET[args.device],
        "batches_per_epoch": n_ours, "epoch_seconds": times, "settings": vars(args),
        "unit": "one epoch of augmented, normalised batches on the device; the tutorial's "
                "worker start-up is inside its epoch (persistent_workers=False, its default)",
        "provenance": provenance(args.device),
    }
    path = write_result(f"data_path_{args.device}", result, args.out)
    print(ratio_line("data_path", ours_rate, base_rate, unit="batches/s",
                     baseline_name="tutorial", target=TARGET[args.device]))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
