"""The ResNet model zoo: registries of parts and the one builder that assembles them."""

from .blocks import BLOCKS
from .merges import MERGES
from .presets import PRESETS
from .resnet import build_model
from .shortcuts import SHORTCUTS
from .stems import STEMS

__all__ = ["build_model", "BLOCKS", "MERGES", "PRESETS", "SHORTCUTS", "STEMS"]
