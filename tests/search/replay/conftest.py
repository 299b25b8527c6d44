"""A synthetic learning-curve table for replay tests (fixtures `curve_rows`, `replay_spec`): the
final accuracy is a known function of the configuration, so tests can tell a good search from a
bad one without training."""

from __future__ import annotations

import math
import random

import pytest

from search.replay.table import Row
from search.spec.model import SearchSpec, parse_spec

MAX_EPOCHS = 4
SPACE = {
    "lr": {"float": [1e-3, 1.0], "log": True},
    "residual": {"choice": ["add", "scaled"]},
    "residual_scale": {"float": [0.0, 1.0], "when": {"residual": "scaled"}},
}
DIVERGES_ABOVE = 0.6  # lr above which a recorded trial diverged in its third epoch


def final_of(params: dict) -> float:
    """Best near lr = 0.03; `scaled` costs a little unless its scale is near 1."""
    score = 0.95 - 0.25 * abs(math.log10(params["lr"]) + 1.5)
    if params["residual"] == "scaled":
        score -= 0.1 * (1 - params["residual_scale"])
    return max(0.1, score)


def rows(count: int = 60, seed: int = 0) -> list[Row]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        params = {"lr": 10 ** rng.uniform(-3, 0), "residual": rng.choice(["add", "scaled"])}
        if params["residual"] == "scaled":
            params["residual_scale"] = rng.uniform(0, 1)
        final = final_of(params)
        diverged = params["lr"] > DIVERGES_ABOVE
        epochs = [{"epoch": e, "val_acc": final * (e / MAX_EPOCHS) ** 0.5,
                   "epoch_seconds": 1.0 + 0.1 * (index % 3)}
                  for e in range(1, (2 if diverged else MAX_EPOCHS) + 1)]
        out.append(Row(index=index, params=params, epochs=epochs,
                       outcome="diverged" if diverged else "completed"))
    return out


def spec(sampler: dict, scheduler: dict, trials: int = 8) -> SearchSpec:
    return parse_spec({"name": "replayed", "data": {"dataset": "digits"},
                       "objective": {"metric": "val_acc", "mode": "max"},
                       "budget": {"trials": trials, "max_epochs": MAX_EPOCHS},
                       "sampler": sampler, "scheduler": scheduler, "space": SPACE})


@pytest.fixture(scope="session")
def curve_rows() -> list[Row]:
    return rows()


@pytest.fixture
def replay_spec():
    return spec
