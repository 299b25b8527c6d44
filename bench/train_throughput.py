"""Training images/s end to end: our data path + Trainer step vs the tutorial pipeline.

Ours: the dataset resident on the device (DeviceLoader: random crop with 4 px padding + flip,
normalised on the device), `Trainer.train_step` (bf16 autocast + channels_last on CUDA, fused
SGD, per-batch LR schedule). Baseline: Ray Tune's PyTorch CIFAR tutorial, a dataset of PIL
images with RandomCrop(32, padding=4) + RandomHorizontalFlip() + ToTensor() + Normalize through
DataLoader(shuffle=True, num_workers=W) and a plain fp32 loop (CrossEntropyLoss, SGD). Same
model (ResNet-18 with the CIFAR stem by default), same synthetic CIFAR-shaped images, same batch
size, same device, same process; rounds alternate (ours, tutorial, ours, ...) and warm-up rounds
(cudnn autotune, torch.compile, worker start) are excluded. The tutorial's loader restarts its
workers at every epoch boundary (persistent_workers=False, its default): that is a cost a trial
pays, so it is inside the measurement.

    python bench/train_throughput.py                                # CUDA if present
    python bench/train_throughput.py --compare-compile              # + ours under torch.compile
    python bench/train_throughput.py --device cpu --depth 20 --steps 10 --batch-size 64

`--compare-compile` adds a third arm, ours with `compile: true`, timed in the same alternation
(its compilation happens in an untimed round first, whose seconds are reported as
`compile_first_round_s`). On the CPU the trainer compiles nothing (runtime_for), so that arm is
eager there.

Writes bench/results/train_throughput_<device>.json and prints one ratio line. Needs only
torch and torchvision (plus PIL, which torchvision brings).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

if __package__ in (None, ""):  # run as a file: make `bench` and `resnet_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from bench.common import (RESULTS, alternate, median, provenance, ratio_line, timed,
                          write_result)
from bench.data_path import PILImages
from resnet_core.config import TrainConfig
from resnet_core.data.datasets import DataSplits, channel_stats
from resnet_core.models import build_model
from resnet_core.train import Trainer

TARGET = {"cuda": 3.0}  # shared/PERFORMANCE.md target 1; the CPU target is on the data path


def batches(epoch_iter: Callable[[int], Iterator]) -> Iterator:
    """Batches forever, epoch after epoch (each epoch restarts the underlying iterator)."""
    for epoch in itertools.count():
        yield from epoch_iter(epoch)


def ours(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, device: torch.device,
         steps: int) -> tuple[Callable[[], None], Trainer]:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels).long()
    mean, std = channel_stats(x)
    data = DataSplits(train_x=x, train_y=y, val_x=x[:1], val_y=y[:1], test_x=x[:1],
                      test_y=y[:1], num_classes=10, mean=mean, std=std, name="synthetic")
    trainer = Trainer(cfg, data, device=device)
    stream = batches(trainer.train_loader.epoch)

    def run() -> None:
        for _ in range(steps):
            trainer.train_step(*next(stream))

    return run, trainer


def tutorial(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, device: torch.device,
             steps: int, workers: int) -> Callable[[], None]:
    mean, std = channel_stats(torch.from_numpy(images).permute(0, 3, 1, 2))
    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(mean, std)])
    loader = DataLoader(PILImages(images, labels, transform), batch_size=cfg.batch_size,
                        shuffle=True, num_workers=workers, drop_last=True)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, num_classes=10).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    stream = batches(lambda _: iter(loader))

    def run() -> None:
        model.train()
        for _ in range(steps):
            x, y = next(stream)
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()

    return run


def with_peak_memory(fn: Callable[[], None], device: torch.device,
                     peaks: dict[str, float], name: str) -> Callable[[], None]:
    def run() -> None:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        fn()
        if device.type == "cuda":
            peaks[name] = max(peaks.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**20)

    return run


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--depth", type=int, default=18, help="preset: 18 (ResNet-18), 20, ...")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=50, help="training steps per timed round")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=10_000, help="synthetic training images")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="tutorial DataLoader workers (the Ray tutorial uses 8)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds per side first")
    parser.add_argument("--compile", action="store_true", help="torch.compile ours (CUDA)")
    parser.add_argument("--compare-compile", action="store_true",
                        help="also time ours under torch.compile, in the same alternation")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result JSON")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads of this process (default: torch's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    # Crop + flip only, as in the tutorial; constant LR so any step count is valid.
    cfg = TrainConfig(depth=args.depth, width=args.width, batch_size=args.batch_size,
                      epochs=10_000, schedule="constant", optimizer="sgd", lr=0.05,
                      augment=0.0, crop_padding=4, flip_prob=0.5, compile=args.compile)
    ours_run, trainer = ours(images, labels, cfg, device, args.steps)
    base_run = tutorial(images, labels, cfg, device, args.steps, args.workers)
    peaks: dict[str, float] = {}
    arms = {"ours": with_peak_memory(ours_run, device, peaks, "ours"),
            "tutorial": with_peak_memory(base_run, device, peaks, "tutorial")}
    compiled: dict = {}
    if args.compare_compile:
        compiled_run, compiled_trainer = ours(images, labels,
                                              dataclasses.replace(cfg, compile=True), device,
                                              args.steps)
        compiled = {"compile_first_round_s": timed(compiled_run, device),
                    "compiled_runtime_compile": compiled_trainer.runtime.compile}
        arms["ours_compiled"] = with_peak_memory(compiled_run, device, peaks, "ours_compiled")
    times = alternate(arms, repeats=args.repeats, warmup=args.warmup, device=device)
    work = args.steps * args.batch_size
    ours_rate, base_rate = work / median(times["ours"]), work / median(times["tutorial"])
    if args.compare_compile:
        rate = work / median(times["ours_compiled"])
        compiled |= {"ours_compiled_img_per_s": rate, "compiled_ratio": rate / base_rate,
                     "compiled_vs_eager": rate / ours_rate}
    rt = trainer.runtime
    result = {
        "ours_img_per_s": ours_rate, "tutorial_img_per_s": base_rate,
        "ratio": ours_rate / base_rate, "target_ratio": TARGET.get(device.type),
        **compiled,
        "peak_mem_mb": peaks or None,
        "round_seconds": times, "images_per_round": work,
        "warmup": f"{args.warmup} untimed round(s) of {args.steps} steps per side before "
                  "timing (cudnn autotune, torch.compile, first worker start)",
        "ours_runtime": {"amp_dtype": str(rt.amp_dtype), "channels_last": rt.channels_last,
                         "compile": rt.compile, "grad_scaler": rt.grad_scaler},
        "tutorial_runtime": {"precision": "fp32", "workers": args.workers,
                             "persistent_workers": False},
        "model": f"depth {args.depth}, width {args.width}, stem cifar",
        "settings": vars(args),
        "provenance": provenance(device),
    }
    path = write_result(f"train_throughput_{device.type}", result, args.out)
    print(ratio_line("train_throughput", ours_rate, base_rate, unit="img/s",
                     baseline_name="tutorial", target=TARGET.get(device.type)))
    if args.compare_compile:
        print(ratio_line("train_throughput (compiled)", compiled["ours_compiled_img_per_s"],
                         base_rate, unit="img/s", baseline_name="tutorial",
                         target=TARGET.get(device.type)))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
