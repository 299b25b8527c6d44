"""A validated `space:` section turned into an Optuna define-by-run function.

Define-by-run is what makes conditional parameters honest: a parameter whose `when:` does not hold
is never suggested, so Optuna never learns from a value that had no effect (a step-decay `gamma`
under a cosine schedule, say).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import optuna

from search.spec.points import active, by_position, order


def suggest(trial: optuna.Trial, name: str, param: Any) -> Any:
    if param.kind == "float":
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if param.kind == "int":
        step = 1 if param.log else param.step  # Optuna forbids log with step != 1
        return trial.suggest_int(name, param.low, param.high, step=step, log=param.log)
    choices = list(param.choices)
    if not by_position(param):
        return trial.suggest_categorical(name, choices)
    # Optuna stores only scalars; a list-valued choice (milestones) is sampled by position.
    return choices[trial.suggest_categorical(name, list(range(len(choices))))]


def sample(space: Mapping[str, Any], trial: optuna.Trial) -> dict[str, Any]:
    """The parameters one trial gets, parents first so conditions can be checked."""
    params: dict[str, Any] = {}
    for name in order(space):
        if active(space[name].when, params):
            params[name] = suggest(trial, name, space[name])
    return params


class DefineByRun:
    """The callable Ray's OptunaSearch calls; it captures every `trial.suggest_*` as config.
    A class, not a closure: Tune pickles the searcher (with plain pickle) at every checkpoint."""

    def __init__(self, space: Mapping[str, Any]) -> None:
        self.space = dict(space)

    def __call__(self, trial: optuna.Trial) -> Optional[dict[str, Any]]:
        params = sample(self.space, trial)
        # Ray builds the trial's config from what Optuna stored, which for a list-valued choice
        # is its position; values returned here replace those (OptunaSearch puts them last).
        coded = {k: v for k, v in params.items() if by_position(self.space[k])}
        return coded or None


define_by_run = DefineByRun


def optuna_params(space: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """A point of decoded values as Optuna stores it (a list-valued choice by its position):
    what `optuna.trial.FixedTrial` takes to replay it."""
    return {k: space[k].choices.index(v) if by_position(space[k]) else v
            for k, v in point.items()}
