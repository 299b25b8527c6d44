"""Fused trials: trials of one architecture that differ only in optimizer numbers, augmentation
or seed, trained as one stacked model (the HFTA idea: Wang et al., "Horizontally Fused Training
Array", MLSys 2021, up to 15x the throughput of separate trials on one GPU).

K models are built exactly as K Trainers would build them (each seeded with its own config's
seed), their parameters and buffers stacked along a new first dimension
(`torch.func.stack_module_state`), and one `vmap` of the model's functional form runs all K on K
batches at once: a small network's many small kernels become K times fewer, K times larger ones
(a vmapped convolution is one grouped convolution). Each trial keeps its own data order and
augmentation (its own DeviceLoader, as its Trainer's), its own label smoothing, and its own
learning rate at every step (its own config's real scheduler, `lr_trace`), momentum and weight
decay: SGD's update, written once over the stacked tensors with per-trial numbers, is
torch.optim.SGD's (weight decay added to the gradient, the momentum buffer started from the first
gradient, Nesterov's look-ahead), with no decay on norms and biases unless the config asks.

`fusion_problem(cfgs)` says why configs cannot share a fused model (a field outside FUSABLE
differs, an optimizer other than SGD). tests/resnet_core/test_fused.py shows the fused trials'
losses and weights equal the separate Trainers' to float tolerance.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from resnet_core.config import TrainConfig, config_errors
from resnet_core.data.augment import policy_from_config
from resnet_core.data.datasets import DataSplits
from resnet_core.data.loader import DeviceLoader
from resnet_core.models import build_model
from resnet_core.train.runtime import default_device, runtime_for
from resnet_core.train.schedules import lr_trace
from resnet_core.train.seeding import seed_everything

# What fused trials may differ in: numbers of the optimizer, of the loss and of the augmentation,
# and the seed. Everything else (the architecture, the batch, the schedule's shape, the
# precision) is shared by the one stacked model.
FUSABLE = frozenset({"lr", "momentum", "weight_decay", "label_smoothing", "seed", "augment",
                     "crop_padding", "flip_prob", "erase_prob", "randaug_ops",
                     "randaug_magnitude", "mixup_alpha", "cutmix_alpha"})
OPTIMIZERS = ("sgd", "nesterov")


def fusion_problem(cfgs: Sequence[TrainConfig]) -> Optional[str]:
    """Why these configs cannot train as one fused model, or None."""
    if not cfgs:
        return "no configs to fuse"
    first = dataclasses.asdict(cfgs[0])
    differ = sorted({name for cfg in cfgs[1:] for name, value in dataclasses.asdict(cfg).items()
                     if name not in FUSABLE and value != first[name]})
    if differ:
        return (f"fused trials may differ only in {sorted(FUSABLE)}, but these configs also "
                f"differ in {differ}")
    if cfgs[0].optimizer not in OPTIMIZERS:
        return f"optimizer is {cfgs[0].optimizer!r} but fused trials support {list(OPTIMIZERS)}"
    problems = [p for cfg in cfgs for p in config_errors(cfg)]
    return "; ".join(problems) if problems else None


class FusedTrials:
    """K trials (one per config) of one architecture on `data`, trained as one stacked model."""

    def __init__(self, cfgs: Sequence[TrainConfig], data: DataSplits,
                 device: Union[str, torch.device, None] = None) -> None:
        problem = fusion_problem(cfgs)
        if problem:
            raise ValueError(problem)
        if cfgs[0].momentum == 0 and cfgs[0].optimizer == "nesterov":
            raise ValueError("momentum is 0 but must be > 0 for optimizer 'nesterov'")
        self.cfgs, self.k = list(cfgs), len(cfgs)
        self.device = torch.device(device) if device is not None else default_device()
        self.runtime = runtime_for(cfgs[0], self.device)
        fmt = torch.channels_last if self.runtime.channels_last else torch.preserve_format
        models = []
        for cfg in cfgs:  # as each Trainer builds its model: seeded by its own config
            seed_everything(cfg.seed)
            models.append(build_model(cfg, data.num_classes, in_channels=data.train_x.shape[1])
                          .to(self.device, memory_format=fmt))
        self.params, self.buffers = stack_module_state(models)
        self.base = copy.deepcopy(models[0]).to("meta")
        self.base.train()
        self.loaders = [DeviceLoader(data.train_x, data.train_y, batch_size=cfg.batch_size,
                                     device=self.device, policy=policy_from_config(cfg),
                                     mean=data.mean, std=data.std, num_classes=data.num_classes,
                                     shuffle=True, drop_last=True, seed=cfg.seed,
                                     channels_last=self.runtime.channels_last)
                        for cfg in cfgs]
        self.num_classes = data.num_classes
        self.soft = any(loader.policy.mixes for loader in self.loaders)
        steps_per_epoch = len(self.loaders[0])
        self.lr = torch.tensor([lr_trace(cfg, steps_per_epoch) for cfg in cfgs],
                               dtype=torch.float64).T  # [steps, K]
        self.momentum = self._per_trial([cfg.momentum for cfg in cfgs])
        self.nesterov = cfgs[0].optimizer == "nesterov"
        decay = self._per_trial([cfg.weight_decay for cfg in cfgs])
        no_decay = torch.zeros_like(decay)
        # as resnet_core.train.optim.param_groups: tensors of ndim <= 1 are norms and biases
        self.weight_decay = {name: decay if (p.ndim - 1 > 1 or cfgs[0].decay_norm_and_bias)
                             else no_decay for name, p in self.params.items()}
        self.momentum_buffers: dict[str, Optional[torch.Tensor]] = {n: None for n in self.params}
        self.step = 0

    def _per_trial(self, values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each trial's batch of epoch `epoch` (what its Trainer would train on), stacked:
        x [K, B, C, H, W]; y [K, B] labels, or [K, B, classes] soft targets when any trial
        mixes (one-hot for the others: the same loss)."""
        for pairs in zip(*(loader.epoch(epoch) for loader in self.loaders)):
            xs = torch.stack([x for x, _ in pairs])
            if not self.soft:
                yield xs, torch.stack([y for _, y in pairs])
                continue
            yield xs, torch.stack([y if y.ndim == 2 else
                                   F.one_hot(y, self.num_classes).float() for _, y in pairs])

    def _forward(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One step of every trial on its batch; returns the K (detached) losses."""
        amp = self.runtime.amp_dtype
        with torch.autocast(self.device.type, dtype=amp, enabled=amp is not None):
            logits = vmap(self._forward)(self.params, self.buffers, x)
            losses = torch.stack([F.cross_entropy(logits[k], y[k],
                                                  label_smoothing=cfg.label_smoothing)
                                  for k, cfg in enumerate(self.cfgs)])
        names = list(self.params)
        grads = torch.autograd.grad(losses.sum(), [self.params[n] for n in names])
        self._sgd(dict(zip(names, grads)))
        self.step += 1
        return losses.detach()

    @torch.no_grad()
    def _sgd(self, grads: dict[str, torch.Tensor]) -> None:
        """torch.optim.SGD's update (dampening 0), each trial with its own numbers."""
        lr = self.lr[self.step].to(self.device, torch.float32)
        for name, param in self.params.items():
            shape = (self.k,) + (1,) * (param.ndim - 1)
            grad = grads[name].add(param * self.weight_decay[name].view(shape))
            momentum = self.momentum.view(shape)
            buf = self.momentum_buffers[name]
            if buf is None:
                buf = self.momentum_buffers[name] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad)
            step = grad.add(buf * momentum) if self.nesterov else buf
            param.sub_(step * lr.view(shape))

    def module(self, k: int) -> torch.nn.Module:
        """Trial k as a plain model (a copy of its weights and buffers): to evaluate or save."""
        model = build_model(self.cfgs[k], self.num_classes,
                            in_channels=self.loaders[k].x.shape[1])
        state = {name: tensor[k].detach().clone()
                 for name, tensor in {**self.params, **self.buffers}.items()}
        model.load_state_dict(state)
        return model.to(self.device)


__all__ = ["FUSABLE", "FusedTrials", "fusion_problem"]
