"""Datasets (real file formats, real torchvision classes), splits and the device loader."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from resnet_core.config import DataConfig, config_errors, knob_of
from resnet_core.data import (DATASETS, DatasetMissingError, DeviceLoader, load_data, policy_at)
from resnet_core.data.datasets import channel_stats, split_indices


# --- CIFAR in its real on-disk format --------------------------------------------------------
# The official files are Python 2 pickles of dicts whose str keys ("data", "labels", ...) load
# as str under torchvision's pickle.load(encoding="latin1") (as b"data" under encoding="bytes");
# protocol-2 pickles with str keys load identically.

def _dump(path, obj) -> str:
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return hashlib.md5(path.read_bytes()).hexdigest()


def _batch(rng, n: int, label_key: str, classes: int) -> dict:
    return {"batch_label": "tiny", "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: rng.integers(0, classes, n).tolist(),
            "filenames": [f"{i}.png" for i in range(n)]}


def write_cifar10(root, n: int = 8) -> dict:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{i}": _batch(rng, n, "labels", 10) for i in range(1, 6)}
    batches["test_batch"] = _batch(rng, n, "labels", 10)
    md5 = {name: _dump(folder / name, b) for name, b in batches.items()}
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    md5["batches.meta"] = _dump(folder / "batches.meta", {"label_names": names})
    return {"md5": md5, "batches": batches}


def write_cifar100(root, n: int = 20) -> dict:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    parts = {split: _batch(rng, n, "fine_labels", 100) for split in ("train", "test")}
    md5 = {name: _dump(folder / name, b) for name, b in parts.items()}
    meta = {"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": ["x"] * 20}
    md5["meta"] = _dump(folder / "meta", meta)
    return {"md5": md5, "batches": parts}


def trust_tiny_files(monkeypatch, cls, md5: dict) -> None:
    """The real class, with its checksum table recomputed for the tiny files (the only change)."""
    monkeypatch.setattr(cls, "train_list", [[name, md5[name]] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, md5[name]] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})


def _images(batch: dict) -> torch.Tensor:
    return torch.from_numpy(batch["data"]).view(-1, 3, 32, 32)


def test_cifar10_reads_the_real_format_through_torchvision(tmp_path, monkeypatch):
    written = write_cifar10(tmp_path)
    trust_tiny_files(monkeypatch, torchvision.datasets.CIFAR10, written["md5"])
    data = load_data(DataConfig(dataset="cifar10", root=str(tmp_path), val_fraction=0.25))
    all_x = torch.cat([_images(written["batches"][f"data_batch_{i}"]) for i in range(1, 6)])
    all_y = torch.tensor(sum((written["batches"][f"data_batch_{i}"]["labels"]
                              for i in range(1, 6)), []))
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (30, 10, 8)
    assert data.num_classes == 10 and data.name == "cifar10"
    assert torch.equal(data.test_x, _images(written["batches"]["test_batch"]))
    train, val = split_indices(40, 0.25, 0)
    assert torch.equal(data.train_x, all_x[train]) and torch.equal(data.val_y, all_y[val])
    assert data.train_x.dtype == torch.uint8 and data.train_x.is_contiguous()
    assert data.train_y.dtype == torch.int64


def test_cifar100_reads_fine_labels(tmp_path, monkeypatch):
    written = write_cifar100(tmp_path)
    trust_tiny_files(monkeypatch, torchvision.datasets.CIFAR100, written["md5"])
    data = load_data(DataConfig(dataset="cifar100", root=str(tmp_path), val_fraction=0.1))
    assert data.num_classes == 100
    assert data.test_y.tolist() == written["batches"]["test"]["fine_labels"]


def test_cifar_files_with_unknown_checksums_are_refused(tmp_path):
    write_cifar10(tmp_path)  # torchvision's real md5 table: tiny files count as corrupted
    with pytest.raises(DatasetMissingError, match="missing or corrupted"):
        load_data(DataConfig(dataset="cifar10", root=str(tmp_path)))


@pytest.mark.parametrize("dataset,expected", [
    ("cifar10", "cifar-10-batches-py/data_batch_1..5, test_batch"),
    ("cifar100", "cifar-100-python/train, test, meta"),
    ("imagefolder", "train/<class name>/<image file>"),
])
def test_missing_dataset_says_where_files_go_and_how_to_fix(tmp_path, dataset, expected):
    with pytest.raises(DatasetMissingError) as err:
        load_data(DataConfig(dataset=dataset, root=str(tmp_path / "nowhere")))
    assert isinstance(err.value, FileNotFoundError)
    assert f"{tmp_path / 'nowhere'}/{expected}" in str(err.value)
    if dataset != "imagefolder":
        assert "download: true" in str(err.value)


# The refusal names the archive torchvision fetches and where it looks for it, and never tells a
# spec that already has `download: true` to set it.
ARCHIVES = {"cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py"),
            "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python")}
TORCHVISION = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}


@pytest.mark.parametrize("download, says, never", [
    (False, ["expected {where}/", "extract the official archive {archive}", "into {root}",
             "set data.download: true", "downloads {archive} to {root}/{archive}"],
     ["could not be downloaded"]),
    (True, ["data.download is true", "{archive} could not be downloaded to {root}/{archive}",
            "put the official archive {archive}", "at {root}/{archive}",
            "extracts it there, no internet needed", "{where}/ holds"],
     ["set data.download", "set download"]),
])
@pytest.mark.parametrize("dataset", ARCHIVES)
def test_a_missing_cifar_names_its_archive_and_where_it_goes(tmp_path, monkeypatch, dataset,
                                                             download, says, never):
    """Through torchvision's real classes; a download is refused by a closed local port (the
    internet this test must not reach, whether or not the machine has it)."""
    archive, folder = ARCHIVES[dataset]
    torch_cls = TORCHVISION[dataset]
    assert (torch_cls.filename, torch_cls.base_folder) == (archive, folder)
    monkeypatch.setattr(torch_cls, "url", "http://127.0.0.1:9/" + archive)
    root = tmp_path / "data"
    with pytest.raises(DatasetMissingError) as err:
        load_data(DataConfig(dataset=dataset, root=str(root), download=download))
    message = str(err.value)
    for text in says:
        assert text.format(where=root / folder, archive=archive, root=root) in message, message
    for text in never:
        assert text not in message, message


@pytest.mark.parametrize("dataset, write", [("cifar10", write_cifar10),
                                            ("cifar100", write_cifar100)])
def test_an_archive_put_where_the_refusal_says_loads_without_internet(tmp_path, monkeypatch,
                                                                     dataset, write):
    """What the download-true refusal advises works: the archive at data.root/ARCHIVE is checked
    and extracted by torchvision, and no download is tried (the address is a closed port)."""
    import tarfile

    archive, folder = ARCHIVES[dataset]
    torch_cls = TORCHVISION[dataset]
    staging, root = tmp_path / "staging", tmp_path / "data"
    written = write(staging)
    root.mkdir()
    with tarfile.open(root / archive, "w:gz") as tar:
        tar.add(staging / folder, arcname=folder)
    trust_tiny_files(monkeypatch, torch_cls, written["md5"])
    archive_md5 = hashlib.md5((root / archive).read_bytes()).hexdigest()
    monkeypatch.setattr(torch_cls, "tgz_md5", archive_md5)
    monkeypatch.setattr(torch_cls, "url", "http://127.0.0.1:9/" + archive)
    data = load_data(DataConfig(dataset=dataset, root=str(root), download=True))
    assert (root / folder).is_dir() and data.name == dataset


# --- imagefolder, digits, synthetic ---------------------------------------------------------

def _png(path, size, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_imagefolder_resizes_and_renumbers_test_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for i in range(5):
        _png(tmp_path / "imgs/train/cat" / f"{i}.png", (20, 24), (255, 0, 0))
        _png(tmp_path / "imgs/train/dog" / f"{i}.png", (30, 10), (0, 0, 255))
    _png(tmp_path / "imgs/test/dog/0.png", (12, 12), (0, 0, 255))  # test holds one class only
    data = load_data(DataConfig(dataset="imagefolder", root="~/imgs", image_size=16,
                                val_fraction=0.2))
    assert data.train_x.shape == (8, 3, 16, 16) and data.val_x.shape == (2, 3, 16, 16)
    assert data.num_classes == 2 and data.test_y.tolist() == [1]
    assert data.test_x[0, :, 5, 5].tolist() == [0, 0, 255]
    red = data.train_x[data.train_y == 0]
    assert (red[:, 0] == 255).all() and (red[:, 1:] == 0).all()


def test_imagefolder_without_test_folder_holds_out_a_test_split(tmp_path):
    for i in range(10):
        _png(tmp_path / "train" / ("a" if i % 2 else "b") / f"{i}.png", (8, 8), (i, i, i))
    data = load_data(DataConfig(dataset="imagefolder", root=str(tmp_path), val_fraction=0.2))
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (6, 2, 2)
    seen = torch.cat([data.train_x, data.val_x, data.test_x])[:, 0, 0, 0].sort().values
    assert seen.tolist() == list(range(10))


def test_data_package_imports_only_torch_torchvision_numpy():
    # resnet_core must run on a GPU box with nothing but torch and torchvision (sklearn is
    # imported by the digits reader only, and only where its data file is not found)
    code = ("import sys, resnet_core.data; "
            "print(sorted(m for m in ('sklearn', 'ray', 'optuna', 'mlflow', 'pydantic') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(dataset="digits"))


def test_the_digits_table_is_scikit_learns_read_without_importing_it():
    from sklearn.datasets import load_digits

    from resnet_core.data.sources import digits_table

    code = ("import sys; from resnet_core.data.sources import digits_table; "
            "images, target = digits_table(); "
            "print(images.shape, target.shape, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(1797,", "8,", "8)", "(1797,)", "False"], out.stdout
    images, target = digits_table()
    theirs = load_digits()
    assert images.dtype == theirs.images.dtype and target.dtype == theirs.target.dtype
    assert (images == theirs.images).all() and (target == theirs.target).all()
    assert len(theirs.target_names) == 10  # DIGITS_CLASSES


def test_without_the_file_the_digits_come_from_load_digits(monkeypatch):
    from sklearn.datasets import load_digits

    from resnet_core.data import sources

    monkeypatch.setattr(sources, "DIGITS_FILE", ("datasets", "data", "no-such-file.csv.gz"))
    images, target = sources.digits_table()
    assert (images == load_digits().images).all() and (target == load_digits().target).all()


def test_digits_are_real_scans_split_deterministically(digits):
    assert (len(digits.train_x), len(digits.val_x), len(digits.test_x)) == (1294, 144, 359)
    assert digits.train_x.shape[1:] == (3, 32, 32) and digits.num_classes == 10
    assert set(digits.train_y.tolist()) == set(range(10))
    assert torch.equal(digits.train_x[:, 0], digits.train_x[:, 2])
    assert digits.train_x.max() == 255 and digits.train_x.min() == 0
    again = load_data(DataConfig(dataset="digits"))
    assert torch.equal(again.val_x, digits.val_x) and torch.equal(again.test_y, digits.test_y)
    other = load_data(DataConfig(dataset="digits", split_seed=1))
    assert torch.equal(other.test_x, digits.test_x)  # the test split never depends on the search
    assert not torch.equal(other.val_y, digits.val_y)


def test_digits_at_native_size_are_the_scaled_scans():
    from sklearn.datasets import load_digits

    scans = torch.from_numpy(load_digits().images).float().mul(255 / 16).round()
    data = load_data(DataConfig(dataset="digits", image_size=8, val_fraction=0.5))
    every = torch.cat([data.train_x, data.val_x, data.test_x])[:, 0].float()
    assert torch.equal(every.sum(0), scans.sum(0))  # same images, bilinear at 8x8 is exact


def test_subset_caps_train_after_the_split(digits):
    small = load_data(DataConfig(dataset="digits", subset=100))
    assert len(small.train_x) == 100 and torch.equal(small.val_x, digits.val_x)
    assert small.mean == channel_stats(small.train_x)[0]


def _examples(x: torch.Tensor, y: torch.Tensor) -> Counter:
    return Counter(zip((image.numpy().tobytes() for image in x), y.tolist()))


@pytest.mark.parametrize("subset", [None, 100])
def test_without_validation_the_validation_examples_join_the_training_split(digits, subset):
    held = load_data(DataConfig(dataset="digits", subset=subset))
    final = load_data(DataConfig(dataset="digits", subset=subset), validation=False)
    # the same images with the same labels: a search's train and validation splits, together
    assert _examples(final.train_x, final.train_y) == (
        _examples(held.train_x, held.train_y) + _examples(held.val_x, held.val_y))
    assert len(final.train_x) == len(held.train_x) + len(held.val_x)
    assert len(final.val_x) == len(final.val_y) == 0
    assert final.val_x.shape[1:] == held.val_x.shape[1:] and final.val_x.dtype == torch.uint8
    assert torch.equal(final.test_x, digits.test_x) and torch.equal(final.test_y, digits.test_y)
    # normalisation comes from what it trains on, now including the validation images
    assert (final.mean, final.std) == channel_stats(final.train_x)
    assert final.mean != held.mean


def test_synthetic_is_seeded_and_cifar_shaped():
    cfg = DataConfig(dataset="synthetic", synthetic_size=50)
    a, b = load_data(cfg), load_data(cfg)
    assert a.train_x.shape == (45, 3, 32, 32) and a.test_x.shape == (10, 3, 32, 32)
    assert torch.equal(a.train_x, b.train_x) and a.num_classes == 10


def _dataset_knob():
    return knob_of(next(f for f in dataclasses.fields(DataConfig) if f.name == "dataset"))


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_registered_dataset_is_a_choice_of_the_schema(name):
    # the schema's choices are read from the registry: a hard-coded list would miss new entries
    assert _dataset_knob().check("dataset", name) is None
    assert config_errors(DataConfig(dataset=name)) == []


def test_an_unregistered_dataset_is_refused_by_the_schema_naming_the_valid_ones():
    assert _dataset_knob().check("dataset", "cifar") == (
        f"dataset is 'cifar' but must be one of {list(DATASETS)}")


# Each registered loader, offline: the tiny real-format files of the tests above.
def _tiny_cifar(write, cls):
    def setup(tmp_path, monkeypatch, request):
        trust_tiny_files(monkeypatch, cls, write(tmp_path)["md5"])
        return load_data(DataConfig(dataset=cls.__name__.lower(), root=str(tmp_path),
                                    val_fraction=0.25))
    return setup


def _tiny_imagefolder(tmp_path, monkeypatch, request):
    for i in range(4):
        _png(tmp_path / "train/a" / f"{i}.png", (10, 12), (200, 10, 10))
        _png(tmp_path / "train/b" / f"{i}.png", (12, 10), (10, 10, 200))
    _png(tmp_path / "test/b/0.png", (9, 9), (10, 10, 200))
    return load_data(DataConfig(dataset="imagefolder", root=str(tmp_path), image_size=8,
                                val_fraction=0.25))


OFFLINE = {
    "cifar10": _tiny_cifar(write_cifar10, torchvision.datasets.CIFAR10),
    "cifar100": _tiny_cifar(write_cifar100, torchvision.datasets.CIFAR100),
    "imagefolder": _tiny_imagefolder,
    "digits": lambda tmp_path, monkeypatch, request: request.getfixturevalue("digits"),
    "synthetic": lambda tmp_path, monkeypatch, request: load_data(
        DataConfig(dataset="synthetic", synthetic_size=40)),
}


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_registered_loader_loads_splits_the_device_loader_takes(name, tmp_path,
                                                                      monkeypatch, request):
    assert name in OFFLINE, f"dataset {name!r} is registered but no test loads it: add it here"
    data = OFFLINE[name](tmp_path, monkeypatch, request)
    assert data.name == name
    splits = [(data.train_x, data.train_y), (data.val_x, data.val_y), (data.test_x, data.test_y)]
    channels, height, width = data.train_x.shape[1:]
    for x, y in splits:
        assert x.dtype == torch.uint8 and x.is_contiguous() and x.shape[1:] == (
            channels, height, width)
        assert y.dtype == torch.int64 and y.shape == (len(x),) and len(x) > 0
        assert 0 <= y.min() and y.max() < data.num_classes
    assert len(data.mean) == len(data.std) == channels and min(data.std) > 0
    xb, yb = next(DeviceLoader(data.val_x, data.val_y, batch_size=len(data.val_x), device="cpu",
                               policy=policy_at(0), mean=data.mean, std=data.std,
                               num_classes=data.num_classes, shuffle=False,
                               drop_last=False).epoch(0))
    assert xb.shape == data.val_x.shape and torch.isfinite(xb).all()
    assert torch.equal(yb, data.val_y)


def test_bad_data_config_is_a_clear_error():
    with pytest.raises(ValueError, match="val_fraction is 1.5 but must be < 1"):
        load_data(DataConfig(dataset="synthetic", val_fraction=1.5))
    with pytest.raises(ValueError, match="dataset is 'cifar' but must be one of"):
        load_data(DataConfig(dataset="cifar"))


@pytest.mark.parametrize("n,fraction,seed,subset,sizes", [
    (100, 0.1, 0, None, (90, 10)), (10, 0.25, 3, None, (8, 2)), (100, 0.1, 0, 5, (5, 10)),
    (3, 0.01, 0, None, (2, 1)),
])
def test_split_indices(n, fraction, seed, subset, sizes):
    train, val = split_indices(n, fraction, seed, subset)
    assert (len(train), len(val)) == sizes
    assert not set(train.tolist()) & set(val.tolist())
    assert torch.equal(val, split_indices(n, fraction, seed)[1])


def test_split_leaving_nothing_to_train_is_refused():
    with pytest.raises(ValueError, match="val_fraction is 0.9 but with 1 training examples"):
        split_indices(1, 0.9, 0)


def test_channel_stats_are_exact():
    x = torch.randint(0, 256, (7, 3, 5, 6), dtype=torch.uint8)
    mean, std = channel_stats(x)
    ref = x.double().div(255).transpose(0, 1).reshape(3, -1)
    assert mean == pytest.approx(ref.mean(1).tolist(), abs=1e-12)
    assert std == pytest.approx(ref.std(1, unbiased=False).tolist(), abs=1e-12)


# --- DeviceLoader -----------------------------------------------------------------------------

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def loader(x, y=None, **kw) -> DeviceLoader:
    y = torch.arange(len(x)) % 10 if y is None else y
    args = dict(batch_size=4, device="cpu", policy=policy_at(0), mean=MEAN, std=STD,
                num_classes=10)
    return DeviceLoader(x, y, **{**args, **kw})


def _normalized(x):
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (x.float() / 255 - mean) / std


def test_strength_zero_eval_loader_is_plain_normalized_data_in_order():
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    plain = loader(x, shuffle=False, drop_last=False)
    batches = list(plain.epoch(0))
    assert len(plain) == len(batches) == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    assert torch.allclose(torch.cat([b[0] for b in batches]), _normalized(x), atol=1e-5)
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.arange(10))


def test_shuffled_epoch_is_a_permutation_and_drop_last_counts():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()
    shuffled = loader(x, shuffle=True, drop_last=True)
    seen = torch.cat([b[1] for b in shuffled.epoch(0)])
    assert len(shuffled) == 2 and len(seen) == 8 and len(set(seen.tolist())) == 8
    assert seen.tolist() != sorted(seen.tolist())


def test_augmentation_is_random_per_sample_within_a_batch():
    one = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    crops = loader(one.expand(32, -1, -1, -1).contiguous(), batch_size=32,
                   policy=policy_at(0, crop_padding=4, flip_prob=0.5))
    x, _ = next(crops.epoch(0))
    assert len({b.numpy().tobytes() for b in x}) > 16


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_epochs_are_reproducible_from_seed_and_epoch_alone(strength):
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    a = loader(x, policy=policy_at(strength), seed=3)
    b = loader(x, policy=policy_at(strength), seed=3)
    list(a.epoch(0)), list(a.epoch(1))  # a has run earlier epochs, b resumes at epoch 2
    for (xa, ya), (xb, yb) in zip(a.epoch(2), b.epoch(2), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    first = lambda ld, e: next(ld.epoch(e))[0]
    assert not torch.equal(first(a, 2), first(a, 3))
    assert not torch.equal(first(a, 2), first(loader(x, policy=policy_at(strength), seed=4), 2))


def test_mixing_policy_yields_soft_targets_that_sum_to_one():
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    for xb, yb in loader(x, policy=policy_at(1.0, cutmix_alpha=1.0)).epoch(0):
        assert yb.shape == (4, 10) and yb.dtype == torch.float32
        assert torch.allclose(yb.sum(1), torch.ones(4))


@pytest.mark.parametrize("dtype,channels_last", [(torch.float32, False), (torch.bfloat16, True),
                                                 (torch.float16, False)])
def test_dtype_shape_layout_device(dtype, channels_last):
    x = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8)
    ld = loader(x, policy=policy_at(1.0), dtype=dtype, channels_last=channels_last)
    xb, yb = next(ld.epoch(0))
    assert xb.dtype == dtype and xb.shape == (4, 3, 8, 8) and xb.device.type == "cpu"
    assert xb.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert ld.x.device.type == "cpu" and ld.x.dtype == torch.uint8


@pytest.mark.parametrize("change,message", [
    (dict(x=torch.zeros(4, 3, 8, 8)), "must be uint8 (N, C, H, W)"),
    (dict(y=torch.zeros(3, dtype=torch.long)), "one label per image"),
    (dict(batch_size=0), "batch_size is 0 but must be an integer >= 1"),
    (dict(batch_size=5), "batch_size is 5 but the data has only 4 examples"),
    (dict(mean=(0.5,)), "mean has 1 values but the images have 3 channels"),
    (dict(std=(0.1, 0.0, 0.1)), "every value must be > 0"),
    (dict(num_classes=2), "labels must lie in [0, num_classes)"),
])
def test_bad_loader_arguments_are_clear_errors(change, message):
    x = change.pop("x", torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError) as err:
        loader(x, **{"y": torch.arange(4)} | change)
    assert message in str(err.value)


def test_negative_epoch_is_refused():
    with pytest.raises(ValueError, match="epoch is -1"):
        loader(torch.zeros(4, 3, 8, 8, dtype=torch.uint8)).epoch(-1)

