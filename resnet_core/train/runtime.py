"""Where and how a run computes: device, mixed precision, memory format, compilation."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

import torch

from resnet_core.config import TrainConfig
from resnet_core.provenance import machine, versions

_AMP = {"auto": torch.bfloat16, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: Optional[torch.dtype]  # None: plain fp32
    grad_scaler: bool
    channels_last: bool
    compile: bool


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def runtime_for(cfg: TrainConfig, device: torch.device) -> Runtime:
    """The precision and layout a config gets on a device.

    Only CUDA gets autocast, channels_last and torch.compile: CPU bf16 autocast is slower than
    fp32 on most CPUs, channels_last buys nothing without tensor cores, and inductor on CPU
    needs a C++ toolchain that a CPU-only test box may lack. fp16 needs a GradScaler (its
    range underflows small gradients); bf16 has fp32's range and does not.
    """
    if cfg.precision not in _AMP:
        raise ValueError(f"precision is {cfg.precision!r} but must be one of {list(_AMP)}")
    cuda = device.type == "cuda"
    amp = _AMP[cfg.precision] if cuda else None
    return Runtime(device=device, amp_dtype=amp, grad_scaler=amp is torch.float16,
                   channels_last=cuda and cfg.channels_last, compile=cuda and cfg.compile)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by tensors (CUDA) or the process's peak RSS (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource  # Unix only; imported here so the module still loads elsewhere

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB else


def provenance(device: torch.device) -> dict:
    """Versions and hardware, stored with every checkpoint (all plain strings; the facts from
    resnet_core.provenance, the one place that reads them)."""
    here = machine()
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else here["cpu"] or here["machine"])
    # torch is loaded here, so its version names its build (`+cu130`); torchvision's is its
    # distribution's unless a dataset reader loaded it (never loaded just to be asked).
    found = versions(("torch", "torchvision"))
    return {"torch": str(found["torch"]), "torchvision": str(found["torchvision"]),
            "python": here["python"], "device": f"{device.type}: {name}"}
