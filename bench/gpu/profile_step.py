"""One trial's training step under torch.profiler: where the time of a step goes.

The Trainer a trial builds (ResNet-18 CIFAR stem, bf16 + channels_last, our device-resident
data path) on synthetic CIFAR-shaped data, warmed up (cuDNN autotuner), then --steps steps
profiled. Kept: the top kernels by device time (name, calls, total and share), the device time
per step by kind of kernel (convolution and matrix products, normalisation, element-wise,
optimizer, data path, copies), and how busy the device was: the sum of kernel time over the wall
time of the profiled steps, and the host's time to queue one step. A device that is busy most of
the wall time is bound by its kernels; one that idles while the host queues is bound by launch
overhead (what CUDA graphs or torch.compile remove, and what packing trials fills).

    python bench/gpu/profile_step.py --device cuda --out bench/results

On the CPU (the dry run) only the host's operators exist: the same figures come from them.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import RESULTS, provenance, write_result

# First match wins; names are CUDA kernel names (cuDNN, CUTLASS, PyTorch's ATen kernels) or,
# on the CPU, ATen operator names.
KINDS = [
    ("convolution/matmul", r"conv|gemm|cutlass|sm\d+_xmma|cudnn|wgrad|dgrad|implicit|mm\b|addmm"),
    ("normalisation", r"batch_?norm|bn_|welford|norm"),
    ("optimizer", r"multi_tensor|foreach|fused_sgd|sgd|adam"),
    ("data path", r"randperm|index|gather|scatter|flip|pad|crop|philox|uniform|random"),
    ("copy/cast", r"copy|memcpy|memset|cast|to_copy|convert"),
    ("element-wise", r"elementwise|vectorized|relu|add|mul|threshold|fill|reduce|sum|softmax|"
                     r"loss|nll|log"),
]


def kind_of(name: str) -> str:
    lowered = name.lower()
    for kind, pattern in KINDS:
        if re.search(pattern, lowered):
            return kind
    return "other"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from resnet_core.config import DataConfig, TrainConfig
    from resnet_core.data.datasets import load_data
    from resnet_core.train import Trainer

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    cfg = TrainConfig(depth=args.depth, width=args.width, batch_size=args.batch_size,
                      epochs=10_000, schedule="constant", optimizer="nesterov", lr=0.05,
                      augment=0.5, precise_bn=0)
    data = load_data(DataConfig(dataset="synthetic", synthetic_size=args.images,
                                image_size=args.image_size, val_fraction=0.05))
    trainer = Trainer(cfg, data, device=device)

    def batches():
        epoch = 0
        while True:
            yield from trainer.train_loader.epoch(epoch)
            epoch += 1

    stream = batches()

    def step() -> None:
        trainer.train_step(*next(stream))

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    # The host's time to queue a step, the device not waited for (as the trainer runs).
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    host_queue_s = (time.perf_counter() - start) / args.steps
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        wall_s = time.perf_counter() - start
    events = prof.key_averages()
    if cuda:
        # Kernels are the events with device time of their own; operators only enclose them.
        rows = [(e.key, e.count, e.self_device_time_total) for e in events
                if e.self_device_time_total > 0]
    else:
        rows = [(e.key, e.count, e.self_cpu_time_total) for e in events
                if e.self_cpu_time_total > 0]
    rows.sort(key=lambda row: row[2], reverse=True)
    total_us = sum(row[2] for row in rows)
    by_kind: dict[str, float] = {}
    for name, _, us in rows:
        by_kind[kind_of(name)] = by_kind.get(kind_of(name), 0.0) + us
    per_step_ms = total_us / 1e3 / args.steps
    result: dict[str, Any] = {
        "config": f"depth {args.depth}, width {args.width}, batch {args.batch_size}, "
                  f"{trainer.runtime.amp_dtype or 'fp32'}, channels_last "
                  f"{trainer.runtime.channels_last}, eager",
        "unit": "device (kernel) time" if cuda else "host operator self time (CPU)",
        "steps_profiled": args.steps,
        "wall_ms_per_step": wall_s * 1e3 / args.steps,
        "kernel_ms_per_step": per_step_ms,
        "device_busy_fraction": (total_us / 1e6) / wall_s if wall_s > 0 else None,
        "host_queue_ms_per_step": host_queue_s * 1e3,
        "img_per_s_profiled": args.batch_size * args.steps / wall_s,
        "by_kind_ms_per_step": {k: v / 1e3 / args.steps
                                for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
        "kernels_per_step": sum(row[1] for row in rows) / args.steps,
        "top": [{"name": name[:200], "calls": count, "total_ms": us / 1e3,
                 "share": us / total_us if total_us else None, "kind": kind_of(name)}
                for name, count, us in rows[:args.top]],
        "provenance": provenance(device),
    }
    path = write_result(f"profile_{device.type}", result, args.out)
    busy = result["device_busy_fraction"]
    print(f"profile: {result['wall_ms_per_step']:.2f} ms/step wall, "
          f"{per_step_ms:.2f} ms/step in kernels ({busy:.0%} busy), host queues a step in "
          f"{result['host_queue_ms_per_step']:.2f} ms; top: "
          + "; ".join(f"{t['kind']} {t['share']:.0%}" for t in result["top"][:3]))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
