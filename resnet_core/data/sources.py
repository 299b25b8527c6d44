"""Readers of each dataset into uint8 (N, C, H, W) tensors, decoded once.

Each reader takes a DataConfig and returns the dataset's own train and test splits; validation
splitting, subsetting and statistics happen in `datasets.load_data`, the same for every source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..config import DataConfig

if TYPE_CHECKING:
    import torchvision

DEFAULT_IMAGE_SIZE = 32
# digits and imagefolder without a test/ folder have no official test split: hold out this share
HELD_OUT_TEST = 0.2
HELD_OUT_SEED = 0


class DatasetMissingError(FileNotFoundError):
    """The dataset's files are not where the config says and cannot be downloaded."""


class DatasetUnreadableError(ValueError):
    """A file of the dataset is there but cannot be read; the message names it."""


@dataclass
class Raw:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int


def _root(cfg: DataConfig) -> str:
    return os.path.expanduser(str(cfg.root))


def _held_out(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> Raw:
    """A fixed test split (seed HELD_OUT_SEED), independent of the search's split_seed so that
    every trial of every experiment is tested on the same images."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(HELD_OUT_SEED))
    n_test = round(HELD_OUT_TEST * len(x))
    test, train = order[:n_test].sort().values, order[n_test:].sort().values
    return Raw(x[train], y[train], x[test], y[test], num_classes)


def cifar_missing(name: str, root: str, folder: str, files: str, archive: str, url: str,
                  download: bool, said: str) -> str:
    """What to do when torchvision cannot open a CIFAR dataset at `root` (pure). torchvision
    reads the extracted `root/folder/`; with download it fetches `root/archive`, or uses the
    archive already there when its checksum matches (no internet needed), and extracts it."""
    where = os.path.join(root, folder)
    placed = os.path.join(root, archive)
    if download:
        return (f"{name} files are missing or corrupted at {where}/ and data.download is true, "
                f"but {archive} could not be downloaded to {placed} (torchvision said: {said}). "
                f"Fix: put the official archive {archive} ({url}) at {placed}: torchvision "
                f"checks it and extracts it there, no internet needed; or extract it into {root} "
                f"so that {where}/ holds {files}")
    return (f"{name} files are missing or corrupted: expected {where}/{files} (torchvision "
            f"said: {said}). Fix: extract the official archive {archive} ({url}) into {root}, "
            f"which makes {where}/; or set data.download: true, which downloads {archive} to "
            f"{placed} (or uses the one you put there) and extracts it")


def torchvision_module() -> Any:
    """torchvision, imported by the readers that need it. Importing it loads its detection ops
    and through them torch._dynamo: a second and more of CPU in every process that reads data
    (the driver's pre-flight, each trial's worker), which digits and synthetic data never use."""
    import torchvision

    return torchvision


def _cifar(name: str, files: str):
    def read(cfg: DataConfig) -> Raw:
        cls = getattr(torchvision_module().datasets, name)
        root = _root(cfg)
        try:
            train = cls(root, train=True, download=cfg.download)
            test = cls(root, train=False, download=cfg.download)
        except (RuntimeError, OSError) as err:  # torchvision: missing/corrupt; urllib: offline
            raise DatasetMissingError(cifar_missing(
                cls.__name__, root, cls.base_folder, files, cls.filename, cls.url,
                cfg.download, str(err))) from err

        def tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            return x, torch.as_tensor(ds.targets, dtype=torch.int64)

        return Raw(*tensors(train), *tensors(test), num_classes=len(train.classes))

    return read


# The folder, archive and address come from torchvision's classes: the ones it looks for.
cifar10 = _cifar("CIFAR10", "data_batch_1..5, test_batch, batches.meta")
cifar100 = _cifar("CIFAR100", "train, test, meta")


def imagefolder(cfg: DataConfig) -> Raw:
    """<root>/train/<class>/<image> (and <root>/test/<class>/<image> when present), resized to
    image_size x image_size and decoded once."""
    root, size = _root(cfg), cfg.image_size or DEFAULT_IMAGE_SIZE
    if not os.path.isdir(os.path.join(root, "train")):
        raise DatasetMissingError(
            f"imagefolder expects images at {root}/train/<class name>/<image file> (and "
            f"optionally {root}/test/<class name>/<image file>), but {root}/train is not a folder")
    from torchvision.transforms import v2  # imported here: see torchvision_module
    resize = v2.Compose([v2.PILToTensor(), v2.Resize((size, size), antialias=True)])
    train = _image_folder(os.path.join(root, "train"), resize)
    x, y = _decode(train)
    if not os.path.isdir(os.path.join(root, "test")):
        return _held_out(x, y, len(train.classes))
    test = _image_folder(os.path.join(root, "test"), resize)
    unknown = sorted(set(test.classes) - set(train.classes))
    if unknown:
        raise ValueError(f"imagefolder test classes {unknown} are not among the train classes "
                         f"{train.classes} in {root}")
    # each folder numbers its own classes alphabetically; re-number test by the train names
    remap = torch.tensor([train.class_to_idx[name] for name in test.classes])
    tx, ty = _decode(test)
    return Raw(x, y, tx, remap[ty], len(train.classes))


def _image_folder(folder: str, transform) -> torchvision.datasets.ImageFolder:
    try:
        return torchvision_module().datasets.ImageFolder(folder, transform=transform)
    except FileNotFoundError as err:  # no class folder, or class folders without images
        raise DatasetMissingError(
            f"imagefolder found no images in {folder}: it expects {folder}/<class name>/<image "
            f"file> with at least one image per class (torchvision said: {err})") from None


def _decode(ds) -> tuple[torch.Tensor, torch.Tensor]:
    images = []
    for path, _ in ds.samples:
        try:
            images.append(ds.transform(ds.loader(path)))
        except Exception as err:  # noqa: BLE001 - PIL raises many kinds; all mean "unreadable"
            raise DatasetUnreadableError(
                f"{path} cannot be read as an image ({type(err).__name__}: {err}); remove or "
                "replace it") from None
    return torch.stack(images).contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64)


def digits(cfg: DataConfig) -> Raw:
    """scikit-learn's 1,797 real 8x8 digit scans (values 0..16), upsampled bilinearly to
    image_size and replicated to 3 channels so CIFAR-shaped models run on them unchanged."""
    images, target = digits_table()
    size = cfg.image_size or DEFAULT_IMAGE_SIZE
    scans = torch.from_numpy(images).float().mul(255 / 16).unsqueeze(1)
    scans = F.interpolate(scans, size=(size, size), mode="bilinear", align_corners=False)
    x = scans.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return _held_out(x, torch.from_numpy(target).long(), DIGITS_CLASSES)


DIGITS_CLASSES = 10
DIGITS_FILE = ("datasets", "data", "digits.csv.gz")  # inside the sklearn package


def digits_table() -> tuple[Any, Any]:
    """scikit-learn's digits as `load_digits` gives them: (images (1797, 8, 8) float64, target
    (1797,) int64). Read from the file `load_digits` reads (a gzipped CSV, 64 pixels then the
    label), without importing scikit-learn: that import loads scipy.stats, two seconds of CPU in
    the driver's pre-flight and again in every trial's worker, for a 57 KB file
    (bench/data_start.py). Where the file is not there, `load_digits` itself;
    tests/resnet_core/test_data.py checks that both give the same arrays."""
    import importlib.util

    import numpy as np

    found = importlib.util.find_spec("sklearn")  # finds the package without running it
    folders = list(found.submodule_search_locations or []) if found is not None else []
    path = os.path.join(folders[0], *DIGITS_FILE) if folders else None
    if path is None or not os.path.isfile(path):
        from sklearn.datasets import load_digits  # raises the ImportError when it is missing

        bunch = load_digits()
        return bunch.images, bunch.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def synthetic(cfg: DataConfig) -> Raw:
    """Random CIFAR-shaped images with random labels (10 classes), for throughput only."""
    size = cfg.image_size or DEFAULT_IMAGE_SIZE
    gen = torch.Generator().manual_seed(HELD_OUT_SEED)
    n_test = max(1, round(HELD_OUT_TEST * cfg.synthetic_size))

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
        return x, torch.randint(0, 10, (n,), generator=gen)

    return Raw(*draw(cfg.synthetic_size), *draw(n_test), num_classes=10)
