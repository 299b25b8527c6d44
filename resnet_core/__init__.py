"""resnet_core: the ResNet family of the source articles, a device-resident data path and a
fast resumable trainer — plain PyTorch (torch, torchvision, numpy), no search engines.

    from resnet_core import TrainConfig, DataConfig, load_data, Trainer
    trainer = Trainer(TrainConfig(depth=20, epochs=5), load_data(DataConfig(dataset="digits")))
    for metrics in trainer.fit(): print(metrics)
"""

from resnet_core.config import DataConfig, TrainConfig

__all__ = ["DataConfig", "TrainConfig", "build_model", "load_data", "Trainer", "DivergenceError"]


def __getattr__(name: str):
    # Lazy, so that importing the schema (what `search.spec` needs to validate a file) does not
    # import torch; the heavy parts load on first use.
    if name == "build_model":
        from resnet_core.models import build_model
        return build_model
    if name == "load_data":
        from resnet_core.data import load_data
        return load_data
    if name in ("Trainer", "DivergenceError"):
        import resnet_core.train as train
        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
