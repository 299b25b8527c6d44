"""The search strategies target 4 compares, as the `sampler:` and `scheduler:` sections of a
spec: the same rows for a replay and for real launches (bench/replay.py,
bench/search_efficiency.py), so that both measure the same thing."""

from __future__ import annotations

import itertools
from typing import Any, Callable

from search.spec.model import several_sampler

# "default" names only the types: it gets the product's defaults (search/spec/model.py,
# search/spec/schedulers.py). "tpe_asha" is the default the product had before promotion ASHA
# (bench/README.md §9, phase 3).
STRATEGIES: dict[str, dict[str, Any]] = {
    "default": {"sampler": {"type": "tpe"}, "scheduler": {"type": "promotion_asha"}},
    "tpe_asha": {"sampler": {"type": "tpe"}, "scheduler": {"type": "asha"}},
    "stock": {"sampler": {"type": "tpe", "stopped_trials": "complete"},
              "scheduler": {"type": "asha"}},
    "random_asha": {"sampler": {"type": "random"}, "scheduler": {"type": "asha"}},
    "tpe_fifo": {"sampler": {"type": "tpe"}, "scheduler": {"type": "fifo"}},
    "random": {"sampler": {"type": "random"}, "scheduler": {"type": "fifo"}},
    # Issue 20's methods: Ray's synchronous Hyperband; BOHB (its model over Hyperband); BOHB's
    # model over ASHA; promotion-based ASHA and PASHA (search.engine.promotion), with random
    # proposals as their papers run them and with BOHB's model.
    "hyperband": {"sampler": {"type": "random"}, "scheduler": {"type": "hyperband"}},
    "bohb": {"sampler": {"type": "bohb"}, "scheduler": {"type": "hyperband"}},
    "bohb_asha": {"sampler": {"type": "bohb"}, "scheduler": {"type": "asha"}},
    "promotion": {"sampler": {"type": "random"}, "scheduler": {"type": "promotion_asha"}},
    "tpe_promotion": {"sampler": {"type": "tpe"}, "scheduler": {"type": "promotion_asha"}},
    "bohb_promotion": {"sampler": {"type": "bohb"}, "scheduler": {"type": "promotion_asha"}},
    "pasha": {"sampler": {"type": "random"}, "scheduler": {"type": "pasha"}},
    "bohb_pasha": {"sampler": {"type": "bohb"}, "scheduler": {"type": "pasha"}},
    # DEHB: the `dehb` package's DE inside its own Hyperband brackets (search.engine.dehb).
    "dehb": {"sampler": {"type": "dehb"}, "scheduler": {"type": "dehb"}},
}
BASELINE = "random"  # random search without early stopping: it defines each seed's target
COMPARED = ("default", "stock")  # the paired comparison target 4 asks for

# Issue 21, a search of several objectives (search/replay/fronts.py): each row with the multiple
# of the budget B it spends. The product's default (its sampler for several objectives, MO-TPE at
# the rung, over MO-ASHA by promotion), MO-TPE over the same scheduler (the default before: it
# learns only from completed trials), MO-TPE without early stopping, NSGA-II without early
# stopping given 3B (the bar) and random search.
SEVERAL: dict[str, dict[str, Any]] = {
    "default": {"row": {"sampler": {"type": several_sampler(  # for more than one epoch
                            STRATEGIES["default"]["scheduler"]["type"], max_epochs=2)},
                        "scheduler": dict(STRATEGIES["default"]["scheduler"])}, "budget": 1},
    "tpe_promotion": {"row": STRATEGIES["tpe_promotion"], "budget": 1},
    "tpe_fifo": {"row": STRATEGIES["tpe_fifo"], "budget": 1},
    "nsga2_3b": {"row": {"sampler": {"type": "nsga2"}, "scheduler": {"type": "fifo"}},
                 "budget": 3},
    "random": {"row": STRATEGIES["random"], "budget": 1},
}


def several_for(max_epochs: int) -> dict[str, dict[str, Any]]:
    """SEVERAL for a problem of `max_epochs` epochs (pure): with one epoch there is nothing to
    stop, every row runs under FIFO and the default's sampler is the product's for that case
    (`several_sampler`); a row that becomes the twin of one before it is left out."""
    if max_epochs > 1:
        return {name: dict(strategy) for name, strategy in SEVERAL.items()}
    out: dict[str, dict[str, Any]] = {}
    for name, strategy in SEVERAL.items():
        sampler = strategy["row"]["sampler"]
        if name == "default":
            sampler = {"type": several_sampler("fifo", max_epochs)}
        moved = {**strategy, "row": {"sampler": sampler, "scheduler": {"type": "fifo"}}}
        if moved not in out.values():
            out[name] = moved
    return out


def flag(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"{text!r} must be true or false")
    return text.lower() == "true"


# A knob a default is chosen on -> (spec section, key, how to read a value from the command line)
KNOBS: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "n_startup": ("sampler", "n_startup_trials", int),
    "grace": ("scheduler", "grace_period", int),
    "reduction": ("scheduler", "reduction_factor", float),
    "brackets": ("scheduler", "brackets", int),
    "stopped": ("sampler", "stopped_trials", str),
    "multivariate": ("sampler", "multivariate", flag),
    "liar": ("sampler", "constant_liar", flag),
    "sampler": ("sampler", "type", str),
    "scheduler": ("scheduler", "type", str),
    "random_fraction": ("sampler", "random_fraction", float),
    "min_points": ("sampler", "min_points", int),
}


def grid(items: list[str]) -> dict[str, dict[str, Any]]:
    """TPE + ASHA strategies, one per combination of `knob=v1,v2` items (pure); ValueError
    naming the item when it is not one."""
    axes = []
    for item in items:
        knob, _, values = item.partition("=")
        if knob not in KNOBS or not values:
            raise ValueError(f"grid item {item!r} must be knob=v1,v2 with knob one of "
                             f"{list(KNOBS)}")
        try:
            axes.append([(knob, KNOBS[knob][2](v)) for v in values.split(",")])
        except ValueError as problem:
            raise ValueError(f"grid item {item!r}: {problem}") from None
    out = {}
    for combo in itertools.product(*axes):
        row: dict[str, dict[str, Any]] = {"sampler": {"type": "tpe"},
                                          "scheduler": {"type": "asha"}}
        for knob, value in combo:
            section, key, _ = KNOBS[knob]
            row[section][key] = value
        out[" ".join(f"{k}={v}" for k, v in combo)] = row
    return out


def strategy_spec(base: dict, row: dict, trials: int, seed: int) -> dict:
    """`base` (a resolved spec) searched by strategy `row` with `trials` trials, its sampler
    seeded with `seed` (pure; the result is a raw spec to validate)."""
    return {**base, "budget": {**base["budget"], "trials": trials},
            "sampler": {**row["sampler"], "seed": seed},
            "scheduler": dict(row["scheduler"])}
