"""What a trained network costs besides its accuracy: the figures users constrain a search by.

- `params`: trainable and frozen parameters alike (every tensor of `model.parameters()`).
- `flops`: floating-point operations of one forward pass of ONE image, in eval mode, as
  `torch.utils.flop_counter.FlopCounterMode` counts them: a multiply-add is 2 FLOPs, and only
  matrix products and convolutions are counted (not BatchNorm, activations, pooling or a bias).
- `latency_ms`: inference milliseconds per image on the trial's own device: a batch of
  LATENCY_BATCH images, LATENCY_WARMUP untimed passes (cuDNN autotuning, allocator warm-up,
  lazy initialisation), then the median of LATENCY_REPEATS timed passes divided by the batch,
  in eval mode under `torch.inference_mode()`, with the run's autocast dtype and memory format;
  on CUDA the device is synchronised before and after each timed pass. The eager model is
  timed, never a `torch.compile`d one: a batch size the compiled graph has not seen would
  recompile it (tens of seconds) inside the measurement.
- `train_seconds`: the Trainer's own cumulative wall time of its epochs (training, precise BN
  and validation, as `epoch_seconds`), carried in its checkpoint across a resume.

The first three do not change while a trial trains: a trial measures them once and repeats them
in every result, so that any rung of an early-stopping scheduler sees them.

The input images come from a private generator: measuring never moves the global RNGs, so a
resumed run, which measures again, trains exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Iterator, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from resnet_core.names import COST_METRICS

LATENCY_BATCH = 64
LATENCY_WARMUP = 3
LATENCY_REPEATS = 10

# What `static_costs` measures: every name of resnet_core.names.COST_METRICS but the Trainer's
# own `train_seconds` (tests/resnet_core/test_cost.py holds them together).
STATIC_KEYS = tuple(name for name in COST_METRICS if name != "train_seconds")


def param_count(model: nn.Module) -> int:
    """Number of scalars in the model's parameters (buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, the model's own mode restored after."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def _images(batch: int, image_shape: tuple[int, ...], device: torch.device,
            channels_last: bool = False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)  # never the global RNG (see the docstring)
    x = torch.randn((batch, *image_shape), generator=generator).to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def forward_flops(model: nn.Module, image_shape: tuple[int, ...],
                  device: Optional[torch.device] = None) -> int:
    """FLOPs of one eval-mode forward pass of one image of `image_shape` (C, H, W)."""
    device = device or next(model.parameters()).device
    x = _images(1, image_shape, device)
    with _evaluating(model), torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            model(x)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def latency_ms(model: nn.Module, image_shape: tuple[int, ...],
               device: Optional[torch.device] = None, *,
               amp_dtype: Optional[torch.dtype] = None, channels_last: bool = False,
               batch: int = LATENCY_BATCH, warmup: int = LATENCY_WARMUP,
               repeats: int = LATENCY_REPEATS) -> float:
    """Median milliseconds per image of `repeats` timed eval-mode passes of `batch` images,
    after `warmup` untimed ones (see the module's docstring)."""
    if batch < 1 or warmup < 0 or repeats < 1:
        raise ValueError(f"latency needs batch >= 1, warmup >= 0, repeats >= 1; got batch="
                         f"{batch}, warmup={warmup}, repeats={repeats}")
    device = device or next(model.parameters()).device
    x = _images(batch, image_shape, device, channels_last)
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    times = []
    with _evaluating(model), torch.inference_mode(), autocast:
        for _ in range(warmup):
            model(x)
        for _ in range(repeats):
            start = _sync(device)
            model(x)
            times.append(_sync(device) - start)
    return statistics.median(times) / batch * 1000.0


def static_costs(model: nn.Module, image_shape: tuple[int, ...], device: torch.device, *,
                 amp_dtype: Optional[torch.dtype] = None,
                 channels_last: bool = False, latency: bool = True) -> dict[str, float]:
    """`params`, `flops` and (with `latency`) `latency_ms` of `model` for images of
    `image_shape` on `device`. Latency is the one that costs time (13 batches of
    LATENCY_BATCH: 1.5-2.5 s on a 2-core CPU, a tenth of a short trial's first epoch), so a caller
    that does not use it leaves it out."""
    costs = {"params": param_count(model), "flops": forward_flops(model, image_shape, device)}
    if latency:
        costs["latency_ms"] = latency_ms(model, image_shape, device, amp_dtype=amp_dtype,
                                         channels_last=channels_last)
    return costs


__all__ = ["LATENCY_BATCH", "LATENCY_REPEATS", "LATENCY_WARMUP", "STATIC_KEYS", "forward_flops",
           "latency_ms", "param_count", "static_costs"]
