"""Training: LR schedules, optimizers, seeding and the resumable Trainer (pure PyTorch)."""

from resnet_core.train.errors import DivergenceError

__all__ = ["DivergenceError", "Trainer"]


def __getattr__(name: str):
    # Lazy: config validation imports train.optim/train.schedules for their registry names,
    # and should not pull in the model zoo and data stack that the Trainer needs.
    if name == "Trainer":
        from resnet_core.train.trainer import Trainer

        return Trainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
