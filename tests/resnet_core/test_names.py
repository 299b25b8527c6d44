"""The names of resnet_core's registries are one truth read two ways: `resnet_core.names` (pure
Python, what validation reads) and the registries built from it (what training runs)."""

from __future__ import annotations

import pytest

from resnet_core import names
from resnet_core.config import DataConfig, TrainConfig, knob_of
from resnet_core.data.datasets import DATASETS
from resnet_core.models import BLOCKS, MERGES, PRESETS, SHORTCUTS, STEMS
from resnet_core.train.optim import OPTIMIZERS
from resnet_core.train.schedules import SCHEDULES

from loaded_modules import loaded_by

REGISTRIES = [(names.DEPTHS, PRESETS), (names.BLOCKS, BLOCKS), (names.STEMS, STEMS),
              (names.SHORTCUTS, SHORTCUTS), (names.MERGES, MERGES),
              (names.OPTIMIZERS, OPTIMIZERS), (names.SCHEDULES, SCHEDULES),
              (names.DATASETS, DATASETS)]


@pytest.mark.parametrize("listed,registry", REGISTRIES,
                         ids=["depths", "blocks", "stems", "shortcuts", "merges", "optimizers",
                              "schedules", "datasets"])
def test_every_registry_holds_exactly_its_names_in_their_order(listed, registry):
    assert list(registry) == list(listed)


@pytest.mark.parametrize("config,field,listed", [
    (TrainConfig, "depth", names.DEPTHS), (TrainConfig, "block", names.BLOCKS),
    (TrainConfig, "stem", names.STEMS), (TrainConfig, "shortcut", names.SHORTCUTS),
    (TrainConfig, "residual", names.MERGES), (TrainConfig, "optimizer", names.OPTIMIZERS),
    (TrainConfig, "schedule", names.SCHEDULES), (DataConfig, "dataset", names.DATASETS)])
def test_the_schema_offers_the_registries_names(config, field, listed):
    f = next(f for f in config.__dataclass_fields__.values() if f.name == field)
    assert knob_of(f).allowed() == list(listed)


def test_a_registry_that_differs_from_its_names_is_refused():
    with pytest.raises(ValueError, match=r"missing entries \['b'\], entries without a name "
                                         r"\['c'\]"):
        names.registry(("a", "b"), {"a": 1, "c": 2})
    # the names' order, whatever order the entries were written in
    assert list(names.registry(("a", "b"), {"b": 2, "a": 1})) == ["a", "b"]


def test_the_names_and_the_schema_load_no_torch():
    code = ("import resnet_core.names, resnet_core.config\n"
            "from resnet_core.config import TrainConfig, config_errors\n"
            "assert config_errors(TrainConfig(block='nope'))\n")
    assert loaded_by(code, ("torch", "torchvision", "numpy")) == []
