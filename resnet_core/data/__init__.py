"""Datasets, the device-resident loader and batched on-device augmentation."""

from .augment import AugmentPolicy, policy_at, policy_from_config
from .datasets import (DATASETS, DataSplits, DatasetMissingError, DatasetUnreadableError,
                       load_data)
from .loader import DeviceLoader

__all__ = ["AugmentPolicy", "DATASETS", "DataSplits", "DatasetMissingError",
           "DatasetUnreadableError", "DeviceLoader", "load_data", "policy_at", "policy_from_config"]
