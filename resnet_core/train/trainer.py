"""One training run: epochs in, metrics out, checkpoints that resume bit-exactly (on CPU).

Exact resume works because every source of randomness is restored or derived: the model,
optimizer, scheduler and scaler states and the global RNGs are in the checkpoint, and the data
order and augmentation of epoch e derive from (seed, e) inside the DeviceLoader.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Iterator, Union

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn

from resnet_core.config import TrainConfig, config_errors, resolved
from resnet_core.data.augment import policy_at, policy_from_config
from resnet_core.data.datasets import DataSplits
from resnet_core.data.loader import DeviceLoader
from resnet_core.models import build_model
from resnet_core.models.dynamic_conv import annealed_temperature, set_temperature
from resnet_core.train.cost import static_costs
from resnet_core.train.errors import DivergenceError
from resnet_core.train.optim import build_optimizer
from resnet_core.train.runtime import (default_device, peak_memory_mb, provenance,
                                       runtime_for)
from resnet_core.train.schedules import build_scheduler
from resnet_core.train.seeding import rng_state, seed_everything, set_rng_state

# One host sync per this many steps bounds the work wasted after a NaN while keeping the CUDA
# queue full: a per-step .item() would make the CPU wait for every kernel before queueing more.
DIVERGENCE_CHECK_EVERY = 32

# Config fields that may differ between a checkpoint and the trainer resuming it: they change
# how fast a run computes or how it is evaluated, never its training trajectory.
RESUMABLE_DIFFERENCES = frozenset({"compile", "channels_last", "eval_batch_size", "tta"})

METRIC_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
               "epoch_seconds", "images_per_s", "peak_mem_mb", "train_seconds")


class Trainer:
    """Trains `build_model(cfg)` on `data` (a DataSplits); see `fit`, `test`, `state_dict`."""

    def __init__(self, cfg: TrainConfig, data: DataSplits,
                 device: Union[str, torch.device, None] = None):
        problems = config_errors(cfg)
        if problems:
            raise ValueError("; ".join(problems))
        self.cfg, self.data = cfg, data
        self.device = torch.device(device) if device is not None else default_device()
        self.runtime = runtime_for(cfg, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: autotune once
        seed_everything(cfg.seed)
        fmt = torch.channels_last if self.runtime.channels_last else torch.preserve_format
        self.model = build_model(cfg, data.num_classes, in_channels=data.train_x.shape[1])
        self.model = self.model.to(self.device, memory_format=fmt)
        self.net = torch.compile(self.model) if self.runtime.compile else self.model
        self.train_loader = self._loader(data.train_x, data.train_y, cfg.batch_size,
                                         policy_from_config(cfg), train=True)
        self.val_loader = self._loader(data.val_x, data.val_y, cfg.eval_batch_size,
                                       policy_at(0.0), train=False)
        self.test_loader = self._loader(data.test_x, data.test_y, cfg.eval_batch_size,
                                        policy_at(0.0), train=False)
        n_bn = min(cfg.precise_bn, len(data.train_x))
        self.bn_loader = self._loader(data.train_x[:n_bn], data.train_y[:n_bn],
                                      cfg.eval_batch_size, policy_at(0.0),
                                      train=False) if n_bn else None
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, len(self.train_loader))
        self.scaler = torch.amp.GradScaler("cuda") if self.runtime.grad_scaler else None
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.train_seconds = 0.0  # wall time of the epochs completed, across resumes

    def _loader(self, x, y, batch_size: int, policy, train: bool) -> DeviceLoader:
        return DeviceLoader(x, y, batch_size=batch_size, device=self.device, policy=policy,
                            mean=self.data.mean, std=self.data.std,
                            num_classes=self.data.num_classes, shuffle=train, drop_last=train,
                            seed=self.cfg.seed, channels_last=self.runtime.channels_last)

    def _autocast(self):
        amp = self.runtime.amp_dtype
        return torch.autocast(self.device.type, dtype=amp, enabled=amp is not None)

    def _sync(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    # ---- training -------------------------------------------------------------------------

    def fit(self) -> Iterator[dict]:
        """Train epochs `self.epoch + 1 .. cfg.epochs`, yielding the metrics of each.

        `lr` is the rate of the epoch's last step; `images_per_s` counts the training phase
        only; `epoch_seconds` includes validation. Without a validation split (a final training
        on train+validation) there is no `val_loss`/`val_acc`. `train_seconds` is the sum of
        every completed epoch's `epoch_seconds`, also those before a resume. Raises
        DivergenceError on a NaN/inf loss.
        """
        for epoch in range(self.epoch + 1, self.cfg.epochs + 1):
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            self._anneal(epoch)
            start = self._sync()
            train_loss, train_acc, seen, lr = self._train_epoch(epoch)
            trained = self._sync()
            self._precise_bn()
            validated = {}
            if len(self.data.val_y):  # empty in a final training on train+validation
                val_loss, val_acc = self._evaluate(self.val_loader, tta=False)
                validated = {"val_loss": val_loss, "val_acc": val_acc}
            end = self._sync()
            self.epoch = epoch
            self.train_seconds += end - start
            yield {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                   **validated, "lr": lr,
                   "epoch_seconds": end - start, "images_per_s": seen / (trained - start),
                   "peak_mem_mb": peak_memory_mb(self.device),
                   "train_seconds": self.train_seconds}

    def _precise_bn(self) -> None:
        """Population BatchNorm statistics of the current weights (Wu & Johnson 2021, "Rethinking
        'Batch' in BatchNorm"). While the lr is high the running averages lag the weights: on
        digits, eval-mode accuracy read 0.13 where the weights scored 0.78, so ASHA's first
        rungs compared noise. Training is unaffected (train mode uses batch statistics)."""
        if self.bn_loader is not None:
            update_bn((x for x, _ in self.bn_loader.epoch(0)), self.model)

    def _anneal(self, epoch: int) -> None:
        """Dynamic-conv attention temperature for `epoch` (a no-op for static blocks).

        The paper anneals 30 -> 1 over the first 10 of 100+ epochs; a short search trial
        anneals over its first third instead, so that every trial ends at temperature 1."""
        set_temperature(self.model, annealed_temperature(
            epoch - 1, anneal_epochs=min(10.0, self.cfg.epochs / 3)))

    def _train_epoch(self, epoch: int) -> tuple[float, float, int, float]:
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen, lr = 0, float("nan")
        for i, (x, y) in enumerate(self.train_loader.epoch(epoch)):
            lr = float(self.optimizer.param_groups[0]["lr"])
            loss, logits = self.train_step(x, y)
            n = y.shape[0]
            seen += n
            loss_sum += loss.float() * n
            correct += (logits.argmax(1) == (y if y.ndim == 1 else y.argmax(1))).sum()
            if (i + 1) % DIVERGENCE_CHECK_EVERY == 0:
                self._check_finite(loss_sum, epoch)
        self._check_finite(loss_sum, epoch)
        return loss_sum.item() / seen, correct.item() / seen, seen, lr

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer and scheduler step on a batch; returns the (detached) loss and logits.
        No host sync: the benchmark times exactly this."""
        self.model.train()
        with self._autocast():
            logits = self.net(x)
            # Soft targets (mixup/cutmix) are class probabilities; cross_entropy takes both.
            loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return loss.detach(), logits.detach()

    def _check_finite(self, loss_sum: torch.Tensor, epoch: int) -> None:
        if not torch.isfinite(loss_sum).item():
            raise DivergenceError(epoch=epoch, step=self.step, loss=loss_sum.item())

    def static_costs(self, latency: bool = True) -> dict[str, float]:
        """`params`, `flops` and `latency_ms` of this run's model on its device, with its
        autocast dtype and memory format (resnet_core.train.cost): they do not change while it
        trains, so a caller measures them once. Moves no RNG and leaves the model's mode as it
        was."""
        return static_costs(self.model, tuple(self.data.train_x.shape[1:]), self.device,
                            amp_dtype=self.runtime.amp_dtype,
                            channels_last=self.runtime.channels_last, latency=latency)

    # ---- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self, loader: DeviceLoader, tta: bool) -> tuple[float, float]:
        """Mean plain cross-entropy (no label smoothing, so losses compare across configs)
        and accuracy; with `tta`, logits averaged with those of the mirrored images."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen = 0
        for x, y in loader.epoch(0):
            with self._autocast():
                logits = self.net(x).float()
                if tta:
                    logits = (logits + self.net(x.flip(3)).float()) / 2
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            seen += y.shape[0]
        if seen == 0:
            raise ValueError("cannot evaluate on an empty split")
        return loss_sum.item() / seen, correct.item() / seen

    def test(self) -> dict:
        """Loss and accuracy on the test split (flip TTA when cfg.tta)."""
        loss, acc = self._evaluate(self.test_loader, tta=self.cfg.tta)
        return {"test_loss": loss, "test_acc": acc}

    # ---- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to resume, in a `torch.load(weights_only=True)`-safe form."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "config": resolved(self.cfg),
            "meta": {**provenance(self.device), "dataset": self.data.name},
        }

    def load_state_dict(self, state: dict, extend: bool = False) -> None:
        """Continue from `state`; `fit` then trains from epoch `state["epoch"] + 1`.

        With `extend`, a checkpoint of the same run planned for fewer epochs continues to this
        trainer's `cfg.epochs` (a search whose max_epochs was raised): weights, optimizer state
        and RNGs as saved, the learning rate from then on the schedule of the longer run at the
        step reached, as a run planned that long from the start has it (for an annealing
        schedule it rises at the join: a warm restart)."""
        mine = resolved(self.cfg)
        differ = sorted(k for k in set(mine) | set(state["config"])
                        if k not in RESUMABLE_DIFFERENCES and mine.get(k) != state["config"].get(k))
        longer = extend and differ == ["epochs"] and state["config"]["epochs"] < self.cfg.epochs
        if differ and not longer:
            raise ValueError(f"checkpoint config differs from this trainer's in {differ}: "
                             "resuming it would not continue the same run")
        if (state["scaler"] is None) != (self.scaler is None):
            raise ValueError("checkpoint and trainer disagree on fp16 GradScaler use")
        self.model.load_state_dict(state["model"])
        if longer:
            self._fast_forward(int(state["step"]), state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        # A checkpoint written before train_seconds existed counts from its resume on.
        self.train_seconds = float(state.get("train_seconds", 0.0))
        if self.epoch > 0:
            self._anneal(self.epoch)  # the temperature the saved weights were trained at

    def _fast_forward(self, steps: int, optimizer_state: dict) -> None:
        """This (fresh) trainer's schedule advanced `steps` optimizer steps, then the saved
        optimizer state loaded under it: everything but the learning rate, which is the
        longer schedule's. The schedule depends only on its own steps (the optimizer's steps
        never change a group's lr), so stepping it alone reaches exactly where a run of this
        length would be."""
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                self.scheduler.step()
        rates = [group["lr"] for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(optimizer_state)
        for group, rate in zip(self.optimizer.param_groups, rates):
            group["lr"] = rate

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write a checkpoint atomically: a crash mid-write leaves the previous file intact."""
        tmp = f"{os.fspath(path)}.tmp"
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    @staticmethod
    def read(path: Union[str, os.PathLike]) -> dict:
        """Load a checkpoint on the CPU, refusing anything but tensors and plain containers."""
        return torch.load(path, map_location="cpu", weights_only=True)


__all__ = ["Trainer", "METRIC_KEYS", "DIVERGENCE_CHECK_EVERY"]
