"""The device memory one training run of a config holds at its peak: what a trial needs of a GPU
it shares with other trials.

`footprint(cfg, data, device)` builds the Trainer a trial builds (model, optimizer, every split
of the dataset resident on the device), takes PROBE_STEPS training steps (cuDNN's autotuner tries
its algorithms and their workspaces on the first; the optimizer's state exists after it), then
evaluates one batch of `eval_batch_size` with flip TTA, as the epoch's validation and the final
test do, and reads the peak:

- CUDA: the caching allocator's peak reservation (memory no other process can use while this
  one lives) and its peak allocation. `process_overhead` adds what a process holds outside the
  allocator (the CUDA context, library kernels and handles): nvidia-smi's figure for this
  process minus the allocator's reservation, or, where nvidia-smi does not list it, the card's
  used memory minus the reservation (which counts any other process on the card too).
- CPU: no memory belongs to a run alone; the process's peak resident set is reported, named as
  such (`kind: "cpu-rss"`), so nobody mistakes it for a device figure.

The probe trains eagerly (`compile` off): compiling costs tens of seconds per config, and
inductor's fused kernels keep fewer intermediates than eager mode does, so the eager peak bounds
the compiled one.

    python -m resnet_core.train.footprint < request.json

reads {"device": ..., "data": DataConfig fields, "configs": [TrainConfig fields, ...]} and
prints one JSON object: the device, its memory, the process overhead and one entry per config
(its peaks, or the error that stopped it: a config the model refuses, or out of memory).
Nothing but torch, torchvision and resnet_core: a GPU machine with no search stack runs it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Optional

import torch

from resnet_core.config import DataConfig, TrainConfig
from resnet_core.data.datasets import DataSplits, load_data
from resnet_core.train.runtime import peak_memory_mb
from resnet_core.train.trainer import Trainer

PROBE_STEPS = 3
MIB = 2**20


def footprint(cfg: TrainConfig, data: DataSplits, device: torch.device) -> dict[str, float]:
    """Peak memory (MiB) of a training run of `cfg` on `data`: `peak_reserved` and
    `peak_allocated` on CUDA; on CPU `peak_reserved` is the process's peak RSS."""
    cfg = dataclasses.replace(cfg, compile=False)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()  # what an earlier probe of this process left cached
        torch.cuda.reset_peak_memory_stats(device)
    trainer = Trainer(cfg, data, device=device)
    try:
        batches = trainer.train_loader.epoch(0)
        for _ in range(min(PROBE_STEPS, len(trainer.train_loader))):
            trainer.train_step(*next(batches))
        _evaluate_one_batch(trainer)
        if cuda:
            torch.cuda.synchronize(device)
            return {"peak_reserved": torch.cuda.max_memory_reserved(device) / MIB,
                    "peak_allocated": torch.cuda.max_memory_allocated(device) / MIB}
        rss = peak_memory_mb(device)
        return {"peak_reserved": rss, "peak_allocated": rss}
    finally:
        del trainer


def _evaluate_one_batch(trainer: Trainer) -> None:
    """One evaluation batch with flip TTA, in eval mode and the run's autocast: no graph is
    kept, but a batch of eval_batch_size can still outgrow a small training batch."""
    loader = trainer.val_loader if len(trainer.data.val_y) else trainer.test_loader
    x, _ = next(iter(loader.epoch(0)))
    amp = trainer.runtime.amp_dtype
    trainer.model.eval()
    with torch.no_grad(), torch.autocast(trainer.device.type, dtype=amp, enabled=amp is not None):
        trainer.net(x)
        trainer.net(x.flip(3))


def process_overhead(device: torch.device) -> tuple[float, str]:
    """(MiB, how it was measured) this process holds on the card beyond the allocator's
    current reservation."""
    reserved = torch.cuda.memory_reserved(device) / MIB
    used = _nvidia_smi_process_mib(os.getpid())
    if used is not None:
        return max(0.0, used - reserved), "nvidia-smi (this process)"
    free, total = torch.cuda.mem_get_info(device)
    return max(0.0, (total - free) / MIB - reserved), "card used memory (every process on it)"


def _nvidia_smi_process_mib(pid: int) -> Optional[float]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 2 and fields[0] == str(pid) and fields[1].isdigit():
            return float(fields[1])
    return None  # another pid namespace (a container) or an older driver


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """Measure every config of a request (see the module's docstring)."""
    device = torch.device(request.get("device") or
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("device cuda asked for, but torch sees no CUDA device here")
    data = load_data(DataConfig(**request["data"]))
    configs, overhead = [], None
    for fields in request["configs"]:
        try:
            cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in fields.items()})
            configs.append(footprint(cfg, data, device))
            if cuda and overhead is None:  # once: the context is the process's, not a run's
                overhead = process_overhead(device)
        except (ValueError, torch.OutOfMemoryError) as error:
            configs.append({"error": f"{type(error).__name__}: {str(error)[:300]}"})
            if cuda:
                torch.cuda.empty_cache()
    result: dict[str, Any] = {"device": str(device), "configs": configs}
    if cuda:
        props = torch.cuda.get_device_properties(device)
        mib, source = overhead or (0.0, "not measured: no config ran")
        result |= {"kind": "cuda", "device_name": props.name,
                   "total_mib": props.total_memory / MIB,
                   "overhead_mib": mib, "overhead_source": source}
    else:
        result |= {"kind": "cpu-rss", "device_name": "cpu", "total_mib": None,
                   "overhead_mib": 0.0,
                   "overhead_source": "cpu: peak_reserved is the process's peak RSS"}
    return result


def main() -> None:
    print(json.dumps(probe(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
