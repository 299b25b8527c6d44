"""Packing (targets 2 and 5): k trials of a small ResNet sharing one GPU through Ray's fractional
GPUs. For k = 1, 4 and 8: the aggregate training images/s, each trial's peak memory, and the
memory pre-flight's prediction of that peak next to what the trials really held.

Eight Ray actors (the largest k) are placed with `num_gpus=1/8` each on a Ray of one GPU, as a
search with `trial.resources.gpu: 0.125` places its trials. Each builds the Trainer a trial builds
(resnet_core: the dataset resident on the device, bf16 + channels_last) on synthetic
CIFAR-shaped data and warms up (cuDNN's autotuner, the optimizer's state). Then k of them train
together for --seconds, starting at the same wall-clock instant; a trial counts the images of
the steps it finished inside its window (synchronising every few steps to read the clock).
Aggregate = the sum over the k trials of images ÷ seconds. Ratios are against k = 1, measured
in the same run on the same actors.

With --fused, the largest k trials (differing in lr and seed) then train as one stacked,
vmapped model in this process (resnet_core/train/fused.py, the HFTA idea), timed the same way.

Before Ray starts, the pre-flight's probe (search/run/memory.py, the `resnet-search launch`
code) measures the same config in a process of its own, and its rule says whether 8 fit; after
the runs, nvidia-smi's per-process memory of each actor is recorded beside it.

On the CPU (--device cpu, the dry run, with --trials 1,2,4 on its 2 cores) there is no GPU to
share: the actors ask for 1/k of a custom resource `fake_gpu`, of which this Ray has one, so the
same fractional placement runs.

    python bench/gpu/packing.py --device cuda --out bench/results
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import RESULTS, provenance, write_result

TARGETS = {4: 2.5, 8: 3.0}  # shared/PERFORMANCE.md target 2: aggregate vs one trial alone
MAX_SLOTS = 8
SYNC_EVERY = 8  # steps between clock reads (each read waits for the GPU's queue)


def configs(args: argparse.Namespace) -> tuple[dict, dict]:
    from resnet_core.config import DataConfig, TrainConfig, resolved

    cfg = TrainConfig(depth=args.depth, width=args.width, batch_size=args.batch_size,
                      epochs=10_000, schedule="constant", optimizer="nesterov", lr=0.05,
                      augment=0.5, eval_batch_size=args.batch_size * 4, precise_bn=0)
    data = DataConfig(dataset="synthetic", synthetic_size=args.images,
                      image_size=args.image_size, val_fraction=0.05)
    return resolved(cfg), resolved(data)


class Trial:
    """One packed trial: the Trainer a search trial builds, stepping for a fixed window."""

    def __init__(self, cfg: dict, data: dict, device: str, warm_steps: int) -> None:
        import torch

        from resnet_core.config import DataConfig, TrainConfig
        from resnet_core.data.datasets import load_data
        from resnet_core.train import Trainer

        torch.set_num_threads(1)
        self.torch, self.device = torch, torch.device(device)
        trainer_cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v
                                     for k, v in cfg.items()})
        self.trainer = Trainer(trainer_cfg, load_data(DataConfig(**data)), device=self.device)
        loader = self.trainer.train_loader
        self.stream = itertools.chain.from_iterable(loader.epoch(e) for e in itertools.count())
        for _ in range(warm_steps):
            self.trainer.train_step(*next(self.stream))
        self._sync()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def pid(self) -> int:
        return os.getpid()

    def run(self, seconds: float, start_at: float) -> dict[str, Any]:
        torch, cuda = self.torch, self.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        time.sleep(max(0.0, start_at - time.time()))
        batch = self.trainer.cfg.batch_size
        start = time.perf_counter()
        steps, elapsed = 0, 0.0
        while elapsed < seconds:
            for _ in range(SYNC_EVERY):
                self.trainer.train_step(*next(self.stream))
            steps += SYNC_EVERY
            self._sync()
            elapsed = time.perf_counter() - start
        from resnet_core.train.runtime import peak_memory_mb

        out = {"pid": os.getpid(), "images": steps * batch, "seconds": elapsed,
               "img_per_s": steps * batch / elapsed}
        if cuda:
            out |= {"peak_allocated_mib": torch.cuda.max_memory_allocated(self.device) / 2**20,
                    "peak_reserved_mib": torch.cuda.max_memory_reserved(self.device) / 2**20}
        else:
            out |= {"peak_rss_mib": peak_memory_mb(self.device)}
        return out


def fused_arm(cfg: dict, data: dict, device: str, k: int, seconds: float,
              warm_steps: int) -> dict[str, Any]:
    """k trials differing in lr and seed as one vmapped model in this process (the HFTA idea,
    resnet_core/train/fused.py), timed like a packed arm: images of all k ÷ seconds."""
    import dataclasses

    import torch

    from resnet_core.config import DataConfig, TrainConfig
    from resnet_core.data.datasets import load_data
    from resnet_core.train.fused import FusedTrials

    base = TrainConfig(**{key: tuple(v) if isinstance(v, list) else v for key, v in cfg.items()})
    cfgs = [dataclasses.replace(base, lr=base.lr * (0.5 + i / k), seed=i) for i in range(k)]
    dev = torch.device(device)
    fused = FusedTrials(cfgs, load_data(DataConfig(**data)), device=dev)
    stream = itertools.chain.from_iterable(fused.batches(e) for e in itertools.count())

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warm_steps):
        fused.train_step(*next(stream))
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start, steps, elapsed = time.perf_counter(), 0, 0.0
    while elapsed < seconds:
        for _ in range(SYNC_EVERY):
            fused.train_step(*next(stream))
        steps += SYNC_EVERY
        sync()
        elapsed = time.perf_counter() - start
    images = steps * base.batch_size * k
    out = {"trials": k, "images": images, "seconds": elapsed,
           "aggregate_img_per_s": images / elapsed, "process": "one (no Ray)"}
    if dev.type == "cuda":
        out["peak_reserved_mib"] = torch.cuda.max_memory_reserved(dev) / 2**20
    return out


def nvidia_smi_mib() -> dict[int, float]:
    """Used GPU memory per process id, as the driver counts it (empty without nvidia-smi)."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {}
    out = subprocess.run([exe, "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True,
                         timeout=20)
    found = {}
    for line in out.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
            found[int(fields[0])] = float(fields[1])
    return found


def preflight(cfg: dict, data: dict, device: str, slots: int) -> dict[str, Any]:
    """What the launch's memory pre-flight measures and decides for `slots` trials of this
    config."""
    from resnet_core.config import DataConfig, TrainConfig
    from search.run import memory

    start = time.perf_counter()
    result = memory.measure(DataConfig(**data), [TrainConfig(**{
        k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})], device)
    entry = result["configs"][0]
    out: dict[str, Any] = {"probe": result, "seconds": time.perf_counter() - start}
    if "peak_reserved" in entry and result["kind"] == "cuda":
        need = entry["peak_reserved"] + result["overhead_mib"]
        out |= {"per_trial_mib": need, "gpu": memory.fraction_for(slots),
                "verdict": memory.packing_problem(memory.fraction_for(slots), need,
                                                  result["total_mib"], result["device_name"],
                                                  "probe") or "fits"}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=12.0, help="timed window per k")
    parser.add_argument("--warm-steps", type=int, default=20)
    parser.add_argument("--trials", default="1,4,8",
                        help=f"k values, at most {MAX_SLOTS}; the largest is the number of "
                             "actors, each placed with 1/largest of the GPU")
    parser.add_argument("--fused", action="store_true",
                        help="also train the largest k as one fused (vmapped) model")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.trials.split(",")]
    if not 1 <= min(ks) <= max(ks) <= MAX_SLOTS:
        parser.error(f"--trials: values 1 to {MAX_SLOTS}")
    slots = max(ks)
    cfg, data = configs(args)
    result: dict[str, Any] = {"config": cfg, "data": data, "settings": vars(args),
                              "placement": (f"{slots} Ray actors with num_gpus=1/{slots}"
                                            if args.device == "cuda" else
                                            f"{slots} Ray actors with 1/{slots} of a custom "
                                            "resource fake_gpu (CPU dry run)")}
    try:
        result["preflight"] = preflight(cfg, data, args.device, slots)
    except Exception as error:  # noqa: BLE001 - recorded; the packing runs regardless
        result["preflight"] = {"error": f"{type(error).__name__}: {error}"}

    import ray

    cuda = args.device == "cuda"
    ray.init(num_cpus=max(2, os.cpu_count() or 2), num_gpus=1 if cuda else 0,
             resources={} if cuda else {"fake_gpu": 1}, include_dashboard=False,
             log_to_driver=True)
    try:
        share = {"num_gpus": 1 / slots, "num_cpus": 1} if cuda else {
            "resources": {"fake_gpu": 1 / slots}, "num_cpus": 0}
        actor = ray.remote(Trial).options(**share)
        started = time.perf_counter()
        trials = [actor.remote(cfg, data, args.device, args.warm_steps) for _ in range(slots)]
        pids = ray.get([t.pid.remote() for t in trials])
        result["actors_ready_s"] = time.perf_counter() - started
        arms: dict[str, Any] = {}
        for k in ks:
            try:
                runs = ray.get([t.run.remote(args.seconds, time.time() + 1.0)
                                for t in trials[:k]])
            except Exception as error:  # noqa: BLE001 - an OOM of one arm is a result
                arms[str(k)] = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
                continue
            used = nvidia_smi_mib()
            for run in runs:
                run["nvidia_smi_mib"] = used.get(run["pid"])
            arms[str(k)] = {"aggregate_img_per_s": sum(r["img_per_s"] for r in runs),
                            "trials": runs}
        result["arms"] = arms
        result["actor_pids"] = pids
    finally:
        ray.shutdown()
    if args.fused:  # the GPU is free again: the fused arm runs in this process
        try:
            result["fused"] = fused_arm(cfg, data, args.device, slots, args.seconds,
                                        args.warm_steps)
        except Exception as error:  # noqa: BLE001 - recorded; the packed arms stand
            result["fused"] = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
    one = result["arms"].get("1", {}).get("aggregate_img_per_s")
    result["ratios"] = {k: (arm["aggregate_img_per_s"] / one if one and "error" not in arm
                            else None) for k, arm in result["arms"].items() if k != "1"}
    result["targets"] = {str(k): v for k, v in TARGETS.items()}
    result["oom"] = any("OutOfMemory" in arm.get("error", "") for arm in result["arms"].values())
    result["provenance"] = provenance(args.device)
    path = write_result(f"packing_{args.device}", result, args.out)
    for k, arm in result["arms"].items():
        agg = arm.get("aggregate_img_per_s")
        ratio = result["ratios"].get(k)
        print(f"packing k={k}: " + (f"{agg:,.0f} img/s aggregate" if agg else arm["error"])
              + (f", {ratio:.2f}x one trial (target >= {TARGETS[int(k)]}x)"
                 if ratio and int(k) in TARGETS else ""))
    fused = result.get("fused")
    if fused:
        agg = fused.get("aggregate_img_per_s")
        print(f"fused k={slots}: " + (f"{agg:,.0f} img/s aggregate, {agg / one:.2f}x one trial"
                                      if agg and one else fused.get("error", "?")))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
