"""A validated `space:` section turned into an Optuna define-by-run function.

Define-by-run is what makes conditional parameters honest: a parameter whose `when:` does not hold
is never suggested, so Optuna never learns from a value that had no effect (a step-decay `gamma`
under a cosine schedule, say).
"""

from __future__ import annotations

from graphlib import TopologicalSorter
from typing import Any, Mapping

import optuna

SCALARS = (type(None), bool, int, float, str)


def order(space: Mapping[str, Any]) -> list[str]:
    """Parameter names with every `when:` parent before its children (the spec forbids cycles)."""
    graph = {name: set(param.when) & set(space) for name, param in space.items()}
    return list(TopologicalSorter(graph).static_order())


def active(when: Mapping[str, list], params: Mapping[str, Any]) -> bool:
    """A conditional parameter exists only when every parent took one of the listed values."""
    return all(parent in params and params[parent] in values for parent, values in when.items())


def suggest(trial: optuna.Trial, name: str, param: Any) -> Any:
    if param.kind == "float":
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if param.kind == "int":
        step = 1 if param.log else param.step  # Optuna forbids log with step != 1
        return trial.suggest_int(name, param.low, param.high, step=step, log=param.log)
    choices = list(param.choices)
    if all(isinstance(c, SCALARS) for c in choices):
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

    def __call__(self, trial: optuna.Trial) -> None:
        sample(self.space, trial)


define_by_run = DefineByRun
