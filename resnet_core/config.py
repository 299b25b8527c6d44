"""The one schema of what a trial may be.

Every training knob resnet_core offers is a field of `TrainConfig` (or `DataConfig` for the data
a search runs on). Each field carries a `Knob` in its metadata: its allowed choices (the names
in `resnet_core.names` that every registry is built from, readable without torch) and its
numeric bounds. The search
service turns these same fields into its Pydantic validation, so a search space can only name
real knobs, and every value a distribution can produce is checked against the rule stated here.

This module is pure standard library on purpose: it is imported by the GPU benchmarks, where
nothing but torch and torchvision exists.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from resnet_core import names


@dataclass(frozen=True)
class Knob:
    """What a field means and which values are valid for it."""

    doc: str
    choices: Optional[Callable[[], Sequence[Any]]] = None
    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None

    def allowed(self) -> Optional[list]:
        return list(self.choices()) if self.choices else None

    def check(self, name: str, value: Any) -> Optional[str]:
        """Return why `value` is invalid for field `name`, or None when it is valid."""
        if value is None:
            return None
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            return f"{name} is {value!r} but must be one of {allowed}"
        rules = (("ge", ">=", lambda v, b: v >= b), ("gt", ">", lambda v, b: v > b),
                 ("le", "<=", lambda v, b: v <= b), ("lt", "<", lambda v, b: v < b))
        for attr, symbol, ok in rules:
            bound = getattr(self, attr)
            if bound is not None and isinstance(value, (int, float)) and not ok(value, bound):
                return f"{name} is {value!r} but must be {symbol} {bound}"
        return None


def registry_names(attr: str) -> Callable[[], list]:
    """Choices read from `resnet_core.names`, which every registry is built from: the names
    without importing torch (a command that trains nothing stays fast)."""

    def names_of() -> list:
        return list(getattr(names, attr))

    return names_of


def knob(default: Any, doc: str, **rule: Any) -> Any:
    if isinstance(default, (list, dict)):
        raise TypeError("mutable defaults must be tuples")
    return field(default=default, metadata={"knob": Knob(doc=doc, **rule)})


def knob_of(f: dataclasses.Field) -> Knob:
    return f.metadata["knob"]


@dataclass
class TrainConfig:
    """Every knob of one training run. A search space may vary any of these but `epochs`,
    which the search sets from its budget."""

    # --- model (resnet_core.models) ---
    depth: int = knob(20, "preset stage layout: CIFAR 6n+2 (20..110) or ImageNet (18..152)",
                      choices=registry_names("DEPTHS"))
    block: Optional[str] = knob(None, "block type; None uses the preset's own (basic/bottleneck)",
                                choices=registry_names("BLOCKS"))
    width: float = knob(1.0, "width multiplier on every stage's channels", gt=0, le=8)
    stem: str = knob("cifar", "input stem: 3x3 conv (cifar) or 7x7 conv + max-pool (imagenet)",
                     choices=registry_names("STEMS"))
    shortcut: str = knob("projection", "downsampling shortcut: 1x1 conv+BN or zero-pad (option A)",
                         choices=registry_names("SHORTCUTS"))
    residual: str = knob("add", "how branch and identity merge (article 001)",
                         choices=registry_names("MERGES"))
    residual_scale: float = knob(1.0, "scale of the scaled merge (initial value if learnable); "
                                      "0 with learnable gives SkipInit/ReZero", ge=0, le=10)
    residual_learnable: bool = knob(False, "scaled merge: learn the scale")
    residual_target: str = knob("branch", "scaled merge: which path is multiplied",
                                choices=lambda: ["branch", "identity"])
    zero_init_residual: bool = knob(True, "zero-init the last BN of every block (Goyal et al.)")
    dynamic_kernels: int = knob(4, "dynamic block: kernels mixed by attention (K)", ge=1, le=16)
    pretrained: Optional[str] = knob(None, "local state_dict file to start from (transfer)")

    # --- optimisation (resnet_core.train) ---
    optimizer: str = knob("sgd", "optimizer", choices=registry_names("OPTIMIZERS"))
    lr: float = knob(0.1, "peak learning rate", gt=0, le=10)
    momentum: float = knob(0.9, "SGD momentum / AdamW beta1", ge=0, lt=1)
    weight_decay: float = knob(5e-4, "weight decay", ge=0, le=1)
    decay_norm_and_bias: bool = knob(False, "apply weight decay to norm weights and biases too")
    label_smoothing: float = knob(0.0, "label smoothing of the cross-entropy", ge=0, lt=1)
    batch_size: int = knob(128, "training batch size", ge=1, le=65536)
    epochs: int = knob(10, "training epochs (the schedule's horizon)", ge=1, le=10000)

    # --- learning-rate schedule (stepped per batch) ---
    schedule: str = knob("cosine", "LR schedule",
                         choices=registry_names("SCHEDULES"))
    warmup_epochs: float = knob(0.0, "linear warm-up from lr/100, in epochs", ge=0, le=1000)
    step_size: float = knob(30.0, "step: epochs between decays", gt=0, le=10000)
    milestones: tuple = knob((0.5, 0.75), "multistep: decay points as fractions of training")
    gamma: float = knob(0.1, "step/multistep: decay factor; exponential: factor per epoch",
                        gt=0, le=1)
    pct_start: float = knob(0.3, "onecycle: fraction of training spent increasing", gt=0, lt=1)
    min_lr_ratio: float = knob(0.0, "cosine: final lr as a fraction of the peak", ge=0, le=1)

    # --- augmentation (resnet_core.data.augment); None = derived from `augment` ---
    augment: float = knob(0.5, "augmentation strength; 0 is the identity", ge=0, le=1)
    crop_padding: Optional[int] = knob(None, "random-crop padding in pixels", ge=0, le=32)
    flip_prob: Optional[float] = knob(None, "horizontal flip probability", ge=0, le=1)
    erase_prob: Optional[float] = knob(None, "cutout/random-erasing probability", ge=0, le=1)
    randaug_ops: Optional[int] = knob(None, "RandAugment-style ops per image", ge=0, le=4)
    randaug_magnitude: Optional[float] = knob(None, "RandAugment magnitude in [0, 1]", ge=0, le=1)
    mixup_alpha: Optional[float] = knob(None, "mixup Beta(alpha, alpha); 0 = off", ge=0, le=10)
    cutmix_alpha: Optional[float] = knob(None, "cutmix Beta(alpha, alpha); 0 = off", ge=0, le=10)

    # --- runtime ---
    precision: str = knob("auto", "auto = bf16 autocast on CUDA, fp32 elsewhere",
                          choices=lambda: ["auto", "fp32", "bf16", "fp16"])
    channels_last: bool = knob(True, "channels_last memory format (applied on CUDA only)")
    compile: bool = knob(False, "torch.compile the model")
    seed: int = knob(0, "seed for torch, numpy, python and the data order", ge=0)
    tta: bool = knob(True, "horizontal-flip test-time augmentation in the final test")
    eval_batch_size: int = knob(1024, "batch size for validation and test", ge=1, le=65536)
    precise_bn: int = knob(2048, "training images (un-augmented) used to recompute BatchNorm "
                                 "statistics before each evaluation; 0 keeps the running "
                                 "averages", ge=0)


@dataclass
class DataConfig:
    """Which data a run trains on. Not searched: the data is fixed for an experiment."""

    dataset: str = knob("digits", "dataset name",
                        choices=registry_names("DATASETS"))
    root: str = knob("~/.cache/resnet-search/data", "where dataset files live")
    download: bool = knob(False, "download through torchvision when files are missing")
    val_fraction: float = knob(0.1, "share of the training split held out for validation",
                               gt=0, lt=1)
    split_seed: int = knob(0, "seed of the train/validation split", ge=0)
    image_size: Optional[int] = knob(None, "resize to this size (imagefolder, digits: 32)",
                                     ge=8, le=1024)
    subset: Optional[int] = knob(None, "use at most this many training examples", ge=1)
    synthetic_size: int = knob(10000, "synthetic: number of training examples", ge=1)


def config_errors(cfg: Any) -> list[str]:
    """Every rule a config breaks (empty when valid). Used when resnet_core runs alone."""
    return [msg for f in dataclasses.fields(cfg)
            if (msg := knob_of(f).check(f.name, getattr(cfg, f.name))) is not None]


def resolved(cfg: Any) -> dict:
    """A plain dict of a config, fit for a checkpoint (weights_only) or an MLflow param."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
