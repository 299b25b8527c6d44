"""The search's own saved view of its MLflow experiment: the runs table with the objective (each
run's best and its last value), the sampled numbers (`hp.*`) and the sampled choices as
columns, best first.

MLflow's runs table shows no metric or parameter column until someone picks them, one by one.
Its UI keeps saved views as experiment tags (`mlflow.sharedViewState.<id>`: a name and the
table's state as JSON, what its "Views" menu saves) and opens one given in the address
(`viewStateShareKey=<id>`); the launch writes one for the search and the links it prints open
it. Pure functions; store.open_parent writes the tag.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from search.tracking.names import BEST_TAG, EPOCHS_TAG, HP_PREFIX

VIEW_ID = "resnet-search"
TAG_PREFIX = "mlflow.sharedViewState."  # MLflow UI's saved views
TAG = TAG_PREFIX + VIEW_ID


def _column(group: str, key: str) -> str:
    return f"{group}.`{key}`"  # how MLflow's runs table names a column (and a sort key)


def _numeric(param: Mapping[str, Any]) -> bool:
    """Whether a `space:` entry samples numbers (logged as `hp.<name>`)."""
    if "float" in param or "int" in param:
        return True
    choices = param.get("choice") or []
    return bool(choices) and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                 for c in choices)


def columns(spec: Mapping[str, Any]) -> list[str]:
    """The objective (best, last), every sampled number, every other sampled parameter, how
    each trial ended and which one won."""
    space = spec.get("space") or {}
    metric = (spec.get("objective") or {}).get("metric")
    objective = [_column("metrics", f"best_{metric}"), _column("metrics", metric)]
    return (objective if metric else []) + [
        _column("metrics", f"{HP_PREFIX}{name}") for name, p in space.items() if _numeric(p)] + [
        _column("params", name) for name, p in space.items() if not _numeric(p)] + [
        _column("tags", "outcome"), _column("tags", EPOCHS_TAG), _column("tags", BEST_TAG)]


def state(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The runs table's state: its columns, sorted by each run's best objective (the parent's
    is the search's: it sits beside the winner), best first; every run shown in the charts (the
    UI's default is the first 10)."""
    objective = spec.get("objective") or {}
    table: dict[str, Any] = {"searchFilter": "", "selectedColumns": columns(spec),
                             "runsHiddenMode": "SHOW_ALL"}
    if objective.get("metric"):
        table.update(orderByKey=_column("metrics", f"best_{objective['metric']}"),
                     orderByAsc=objective.get("mode") == "min")
    return table


def tag_value(spec: Mapping[str, Any], now_ms: int) -> str:
    """The experiment tag's value: a saved view as MLflow's UI stores one."""
    metric = (spec.get("objective") or {}).get("metric")
    name = f"trials, best {metric} first" if metric else "trials"
    return json.dumps({"name": name, "createdAt": now_ms, "updatedAt": now_ms,
                       "state": json.dumps(state(spec))})
