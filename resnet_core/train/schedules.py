"""Learning-rate schedules by name, all stepped once per optimizer step (per batch).

Per-batch stepping keeps schedules smooth when a search trains for only a few epochs (ASHA's
early rungs), where per-epoch steps would be a staircase. Epoch quantities in the config are
converted to steps here; torch's own schedulers do the arithmetic.

Warm-up (`warmup_epochs > 0`) ramps linearly from lr/100 to the main schedule's first value
(`LinearLR`, then `SequentialLR` hands over), after which the main schedule runs over the
remaining steps. So cosine and onecycle span the steps after warm-up, `step_size` and the
exponential decay count from the end of warm-up, and multistep `milestones` are fractions of the
whole run measured from step 0 (papers state them that way); a milestone that falls inside
warm-up applies when warm-up ends.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.optim import lr_scheduler as lrs

from resnet_core.config import TrainConfig
from resnet_core import names

WARMUP_START = 0.01  # warm-up starts at lr/100


def _constant(opt, cfg: TrainConfig, steps: int, spe: int, warmup: int) -> lrs.LRScheduler:
    return lrs.ConstantLR(opt, factor=1.0, total_iters=0)


def _step(opt, cfg: TrainConfig, steps: int, spe: int, warmup: int) -> lrs.LRScheduler:
    return lrs.StepLR(opt, step_size=max(1, round(cfg.step_size * spe)), gamma=cfg.gamma)


def _multistep(opt, cfg: TrainConfig, steps: int, spe: int, warmup: int) -> lrs.LRScheduler:
    for i, m in enumerate(cfg.milestones):
        if not 0 < m < 1:
            raise ValueError(f"milestones[{i}] is {m} but must be a fraction in (0, 1)")
    total = steps + warmup
    return lrs.MultiStepLR(opt, [max(0, round(m * total) - warmup) for m in cfg.milestones],
                           gamma=cfg.gamma)


def _exponential(opt, cfg: TrainConfig, steps: int, spe: int, warmup: int) -> lrs.LRScheduler:
    # `gamma` is per epoch (the unit a user reasons in); per batch it is its spe-th root.
    return lrs.ExponentialLR(opt, gamma=cfg.gamma ** (1.0 / spe))


def _cosine(opt, cfg: TrainConfig, steps: int, spe: int, warmup: int) -> lrs.LRScheduler:
    return lrs.CosineAnnealingLR(opt, T_max=steps, eta_min=cfg.lr * cfg.min_lr_ratio)


def _onecycle(opt, cfg: TrainConfig, steps: int, spe: int, warmup: int) -> lrs.LRScheduler:
    if cfg.pct_start * steps == 1.0:
        # OneCycleLR's rising phase would end at step 0 and divide by zero.
        raise ValueError(f"pct_start is {cfg.pct_start} but pct_start x {steps} scheduled steps "
                         "must not be exactly 1")
    # cycle_momentum off: `momentum` stays the searched value instead of being overridden by
    # OneCycleLR's 0.85..0.95 cycle (which also fails outright for momentum-free SGD).
    return lrs.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=float(cfg.pct_start),
                          cycle_momentum=False)


SCHEDULES: dict[str, Callable[..., lrs.LRScheduler]] = names.registry(names.SCHEDULES, {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "cosine": _cosine,
    "onecycle": _onecycle,
})


def warmup_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    return round(cfg.warmup_epochs * steps_per_epoch)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    steps_per_epoch: int) -> lrs.LRScheduler:
    """The schedule named by `cfg.schedule` for `cfg.epochs * steps_per_epoch` per-batch steps.

    Call `.step()` after every optimizer step. The optimizer's lr must equal `cfg.lr`.
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"schedule is {cfg.schedule!r} but must be one of {list(SCHEDULES)}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch is {steps_per_epoch} but must be >= 1")
    total = cfg.epochs * steps_per_epoch
    warmup = warmup_steps(cfg, steps_per_epoch)
    if warmup >= total:
        raise ValueError(f"warmup_epochs is {cfg.warmup_epochs} but must be < epochs "
                         f"({cfg.epochs}) so that the schedule itself gets steps")
    main = SCHEDULES[cfg.schedule](optimizer, cfg, total - warmup, steps_per_epoch, warmup)
    if warmup == 0:
        return main
    # "initial_lr" is where the main schedule starts (cfg.lr, or lr/div_factor for onecycle);
    # scale so that warm-up starts at lr/100 of the peak and ends where the main one starts.
    first = optimizer.param_groups[0]["initial_lr"]
    ramp = lrs.LinearLR(optimizer, start_factor=WARMUP_START * cfg.lr / first, end_factor=1.0,
                        total_iters=warmup)
    return lrs.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def lr_trace(cfg: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The lr of every optimizer step of a run, from the real scheduler (for plots and tests)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    trace = []
    for _ in range(cfg.epochs * steps_per_epoch):
        trace.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return trace


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The lr used by optimizer step `step` (0-based) of a run."""
    total = cfg.epochs * steps_per_epoch
    if not 0 <= step < total:
        raise ValueError(f"step is {step} but must be in [0, {total})")
    return lr_trace(cfg, steps_per_epoch)[step]


__all__ = ["SCHEDULES", "build_scheduler", "lr_at", "lr_trace", "warmup_steps"]
