"""The names every registry of resnet_core answers to, readable without importing torch.

Validating a spec only needs the names of the datasets, blocks, merges and the rest, and a
command that trains nothing (`validate`, `status`, `trials`) should not wait seconds for torch to
import just to read them. So the names live here, in pure Python, and each registry is built
through `registry(NAMES, entries)`, which refuses entries that differ from the names: a registry
and its names cannot drift apart (tests/resnet_core/test_names.py also compares them).
"""

from __future__ import annotations

from typing import Mapping

# resnet_core.models.presets.PRESETS: standard depths (CIFAR 6n+2, then ImageNet)
DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110, 18, 34, 50, 101, 152)
# resnet_core.models.blocks.BLOCKS
BLOCKS: tuple[str, ...] = ("basic", "bottleneck", "preact", "dynamic")
# resnet_core.models.stems.STEMS
STEMS: tuple[str, ...] = ("cifar", "imagenet")
# resnet_core.models.shortcuts.SHORTCUTS
SHORTCUTS: tuple[str, ...] = ("projection", "zeropad")
# resnet_core.models.merges.MERGES
MERGES: tuple[str, ...] = ("add", "scaled", "normalized", "fusion")
# resnet_core.train.optim.OPTIMIZERS
OPTIMIZERS: tuple[str, ...] = ("sgd", "nesterov", "adamw")
# resnet_core.train.schedules.SCHEDULES
SCHEDULES: tuple[str, ...] = ("constant", "step", "multistep", "exponential", "cosine",
                              "onecycle")
# resnet_core.data.datasets.DATASETS
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagefolder", "digits", "synthetic")

# What a trial reports besides the trainer's learning metrics, all to be minimised: the Trainer's
# cumulative `train_seconds` and resnet_core.train.cost.STATIC_KEYS (the spec's objective and
# MLflow's metric list read them here, without torch).
COST_METRICS: tuple[str, ...] = ("params", "flops", "latency_ms", "train_seconds")


def registry(names: tuple, entries: Mapping) -> dict:
    """`entries` as a registry, in the order of `names`; a name without an entry or an entry
    without a name is a programming error, raised when the registry's module is imported."""
    missing = [n for n in names if n not in entries]
    extra = [k for k in entries if k not in names]
    if missing or extra:
        raise ValueError(f"registry and resnet_core.names differ: missing entries {missing}, "
                         f"entries without a name {extra}")
    return {name: entries[name] for name in names}
