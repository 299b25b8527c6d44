"""The smallest real training run the resnet_core tests share: 230 train / 26 val / 51 test
synthetic images of 16x16 (3 steps an epoch at batch 64) and a ResNet-20 of a quarter width."""

from __future__ import annotations

from resnet_core import DataConfig, TrainConfig, load_data


def tiny_data():
    return load_data(DataConfig(dataset="synthetic", synthetic_size=256, image_size=16))


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(depth=20, width=0.25, batch_size=64, epochs=3, lr=0.05, eval_batch_size=128)
    return TrainConfig(**{**base, **kw})
