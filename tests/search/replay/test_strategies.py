"""The strategies a replay and a real benchmark compare, as spec sections (pure)."""

from __future__ import annotations

import pytest

from search.replay.strategies import BASELINE, COMPARED, STRATEGIES, grid, strategy_spec
from search.spec.model import parse_spec

BASE = parse_spec({"name": "b", "data": {"dataset": "digits"},
                   "budget": {"trials": 4, "max_epochs": 6},
                   "sampler": {"type": "tpe", "n_startup_trials": 7, "seed": 9},
                   "scheduler": {"type": "asha", "grace_period": 2},
                   "space": {"lr": {"float": [1e-3, 1.0], "log": True}}}).resolved()


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_is_a_valid_spec_that_keeps_only_its_own_sections(name):
    spec = parse_spec(strategy_spec(BASE, STRATEGIES[name], trials=32, seed=3))
    assert spec.budget.trials == 32 and spec.budget.max_epochs == 6
    assert spec.sampler.seed == 3
    assert spec.sampler.type == STRATEGIES[name]["sampler"]["type"]
    assert spec.scheduler.type == STRATEGIES[name]["scheduler"]["type"]
    # The base spec's own search settings do not leak in: "default" is the product's defaults.
    if spec.sampler.type == "tpe":
        assert spec.sampler.n_startup_trials == parse_spec(
            {**BASE, "sampler": {"type": "tpe"}}).sampler.n_startup_trials
    if spec.scheduler.type == "asha":
        assert spec.scheduler.grace_period == 1


def test_the_baseline_has_no_early_stopping_and_the_product_is_compared_with_stock():
    assert STRATEGIES[BASELINE] == {"sampler": {"type": "random"}, "scheduler": {"type": "fifo"}}
    ours, other = (STRATEGIES[n] for n in COMPARED)
    # the product's defaults against what Ray Tune + Optuna give with stock settings: Ray's
    # OptunaSearch (stopped trials told as complete) over ASHA
    default = parse_spec(strategy_spec(BASE, ours, trials=8, seed=0))
    unset = parse_spec({k: v for k, v in BASE.items() if k not in ("sampler", "scheduler")})
    assert (default.sampler, default.scheduler) == (unset.sampler.model_copy(
        update={"seed": 0}), unset.scheduler)
    assert other == {"sampler": {"type": "tpe", "stopped_trials": "complete"},
                     "scheduler": {"type": "asha"}}
    # the product's default before promotion ASHA differs from stock in one knob
    assert {**STRATEGIES["tpe_asha"]["sampler"], "stopped_trials": "complete"} == \
        other["sampler"] and STRATEGIES["tpe_asha"]["scheduler"] == other["scheduler"]


@pytest.mark.parametrize("items,names,first", [
    (["n_startup=3,5"], ["n_startup=3", "n_startup=5"],
     {"sampler": {"type": "tpe", "n_startup_trials": 3}, "scheduler": {"type": "asha"}}),
    (["grace=1,2", "reduction=2"], ["grace=1 reduction=2.0", "grace=2 reduction=2.0"],
     {"sampler": {"type": "tpe"},
      "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2.0}}),
    (["stopped=pruned,complete", "liar=false"],
     ["stopped=pruned liar=False", "stopped=complete liar=False"],
     {"sampler": {"type": "tpe", "stopped_trials": "pruned", "constant_liar": False},
      "scheduler": {"type": "asha"}}),
])
def test_a_grid_is_every_combination_of_its_knobs(items, names, first):
    found = grid(items)
    assert list(found) == names
    assert found[names[0]] == first
    for row in found.values():
        parse_spec(strategy_spec(BASE, row, trials=8, seed=0))  # each one a valid spec


@pytest.mark.parametrize("item,words", [
    ("speed=1,2", "knob one of"),
    ("grace", "must be knob=v1,v2"),
    ("liar=maybe", "'liar=maybe': 'maybe' must be true or false"),
    ("grace=one", "'grace=one': invalid literal"),
])
def test_a_bad_grid_item_is_named(item, words):
    with pytest.raises(ValueError, match=words):
        grid([item])
