"""Which way each metric an objective may name is better: a loss and a cost down, an accuracy up."""

from __future__ import annotations

import math

import pytest

from resnet_core.names import COST_METRICS
from search.spec import objective


@pytest.mark.parametrize("metric, mode", [
    ("val_acc", "max"), ("train_acc", "max"), ("val_loss", "min"), ("train_loss", "min"),
    ("params", "min"), ("flops", "min"), ("latency_ms", "min"), ("train_seconds", "min"),
])
def test_natural_mode(metric, mode):
    assert objective.natural_mode(metric) == mode
    assert metric in objective.METRICS


def test_every_cost_a_trial_reports_is_a_metric_to_minimise():
    assert set(COST_METRICS) <= set(objective.METRICS)
    assert {objective.natural_mode(m) for m in COST_METRICS} == {"min"}
    # a trial that produced no model is worst on a cost too
    assert objective.worst("min") == math.inf
    assert objective.best([17534, 68786, math.nan], "min") == 17534
