"""The pre-flight's rules, without Ray: what makes every trial fail on the data, and every value
a distribution produces replayed through Optuna into the trainer's config."""

from pathlib import Path

import pytest
import torch

from resnet_core.data import DataSplits
from search.engine import space as engine_space
from search.experiment.location import locate
from search.run import preflight
from search.spec.model import parse_spec

BASE = {"name": "pf", "data": {"dataset": "digits"}, "budget": {"trials": 2, "max_epochs": 1}}


def splits(labels: list[int]) -> DataSplits:
    n = len(labels)
    x = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)
    y = torch.tensor(labels)
    return DataSplits(x, y, x[:1], y[:1], x[:1], y[:1], num_classes=10, mean=(0.5,) * 3,
                      std=(0.2,) * 3, name="digits")


@pytest.mark.parametrize("labels, batch, subset, fields", [
    ([0, 1] * 64, 128, None, []),
    ([0, 1] * 64, 129, None, ["fixed.batch_size"]),  # not one full batch: nothing trains
    ([3] * 200, 64, None, ["data.dataset"]),  # one class
    ([3], 64, 1, ["data.subset", "fixed.batch_size"]),  # data.subset: 1 breaks both
])
def test_what_the_data_must_hold(labels, batch, subset, fields):
    found = preflight.split_problems(splits(labels), batch, "fixed.batch_size", subset, "digits")
    assert [p.loc for p in found] == fields


@pytest.mark.parametrize("section, expected", [
    ({}, ("fixed.batch_size", 128)),  # TrainConfig's default
    ({"fixed": {"batch_size": 32}}, ("fixed.batch_size", 32)),
    ({"space": {"batch_size": {"choice": [32, 256]}}}, ("space.batch_size", 256)),
    ({"space": {"batch_size": {"int": [16, 64]}}}, ("space.batch_size", 64)),
])
def test_the_largest_batch_a_trial_can_get(section, expected):
    spec = parse_spec({**BASE, "budget": {"trials": 1, "max_epochs": 1}, **section})
    assert preflight.largest_batch(spec) == expected


LIST_SPACE = {"milestones": {"choice": [[0.5, 0.75], [0.3, 0.6, 0.9]]},
              "lr": {"float": [0.01, 0.1], "log": True}}


def checked(raw_space: dict) -> list:
    spec = parse_spec({**BASE, "space": raw_space})
    location = locate(spec.name, "runs", spec.tracking.mlflow_uri, spec.data.root, Path("/tmp"))
    return preflight.trials(spec, location, spec.job())


def test_a_list_valued_choice_reaches_the_trainer_as_the_list():
    assert checked(LIST_SPACE) == []


def test_the_replay_finds_a_value_optuna_hands_over_in_another_form(monkeypatch):
    """What the launch did before: Optuna stores a list-valued choice by position and Ray's
    config carried the position, which the trainer refused 33 s into the launch."""
    monkeypatch.setattr(engine_space.DefineByRun, "__call__",
                        lambda self, trial: engine_space.sample(self.space, trial) and None)
    found = checked(LIST_SPACE)
    assert {p.loc for p in found} == {"space.milestones"}
    assert all("milestones is" in p.message and "list of numbers" in p.message for p in found)
