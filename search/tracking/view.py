"""The search's own saved view of its MLflow experiment: the runs table with the objective (each
run's best and its last value), the sampled numbers (`hp.*`) and the sampled choices as
columns, best first.

MLflow's runs table shows no metric or parameter column until someone picks them, one by one.
Its UI keeps saved views as experiment tags (`mlflow.sharedViewState.<id>`: a name and the
table's state as JSON, what its "Views" menu saves) and opens one given in the address
(`viewStateShareKey=<id>`); the launch writes one for the search and the links it prints open
it. Pure functions; store.open_parent writes the tag.

What the view fixes in MLflow's defaults (MLflow 3.17's UI, its saved-view fields):
- the runs: only trials (`searchFilter`: runs with a parent). The parent run's row sat among
  the trials as one more, and its objective point drew in every chart.
- the winner: on top (sorted by the best objective) and tagged `best`. MLflow's table groups
  its columns by kind (attributes, metrics, parameters, tags) whatever the view's order, so the
  `best` column stays in the tags, last; the parent's description links the winner's run.
- the charts: the UI draws one chart per metric it does not find in the view's charts, and
  MLflow's own first parallel-coordinates chart took the first metric it met (`hp.lr`). The
  view brings its charts: parallel coordinates over the sampled parameters ending on (and
  coloured by) the best objective, and the best objective per trial; the `hp.*` numbers, one
  value per run, are kept out of the charts as deleted cards (a card per key stops the UI
  adding one). Every other metric (the per-epoch curves) the UI adds as it does by default.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from search.spec import objective as objective_rules
from search.tracking.names import BEST_TAG, EPOCHS_TAG, HP_PREFIX, PARENT_TAG, PARETO_TAG

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


def _conditional(param: Mapping[str, Any]) -> bool:
    return bool(param.get("when"))


def columns(spec: Mapping[str, Any]) -> list[str]:
    """Which run won, the objective (best, last), every sampled number, every other sampled
    parameter and how each trial ended (the UI shows them grouped by kind)."""
    space = spec.get("space") or {}
    metric = objective_rules.primary(spec).get("metric")
    objective = [_column("metrics", f"best_{metric}"), _column("metrics", metric)]
    # several objectives: the others beside the first, and which runs are on the front
    others = [m for m, _ in objective_rules.saved_objectives(spec)[1:]] if metric else []
    if others:
        objective += [_column("metrics", m) for m in others] + [_column("tags", PARETO_TAG)]
    return [_column("tags", BEST_TAG)] + (objective if metric else []) + [
        _column("metrics", f"{HP_PREFIX}{name}") for name, p in space.items() if _numeric(p)] + [
        _column("params", name) for name, p in space.items() if not _numeric(p)] + [
        _column("tags", "outcome"), _column("tags", EPOCHS_TAG)]


TRIALS_ONLY = f"tags.`{PARENT_TAG}` IS NOT NULL"  # the parent (and a retrain's run) has none
SECTION = {"uuid": "resnet-search-metrics", "name": "Model metrics", "display": True,
           "isReordered": False}  # the UI's section of metrics without a "/" in their name


def _card(kind: str, uuid: str, **fields: Any) -> dict[str, Any]:
    """A chart card as the UI keeps one in a view."""
    return {"uuid": f"resnet-search-{uuid}", "type": kind, "runsCountToCompare": 10,
            "metricSectionId": SECTION["uuid"], "deleted": False, "isGenerated": False,
            "displayName": None, **fields}


def charts(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Parallel coordinates first: the sampled choices, then the sampled numbers, then the best
    objective, last (the axis MLflow colours the lines by); a conditional parameter is left
    out (a trial that did not sample it would drop from the chart). Then the best objective per
    trial, and a deleted card for each `hp.*` number."""
    space = spec.get("space") or {}
    metric = objective_rules.primary(spec).get("metric")
    numbers = [f"{HP_PREFIX}{name}" for name, p in space.items() if _numeric(p)]
    shown = [f"{HP_PREFIX}{n}" for n, p in space.items() if _numeric(p) and not _conditional(p)]
    choices = [n for n, p in space.items() if not _numeric(p) and not _conditional(p)]
    trials = (spec.get("budget") or {}).get("trials") or 10
    cards = [_card("PARALLEL", "parallel", selectedParams=choices,
                   selectedMetrics=shown + ([f"best_{metric}"] if metric else []),
                   showAllRuns=True, runsCountToCompare=trials)]
    if metric:
        cards.append(_card("BAR", "best", metricKey=f"best_{metric}", isGenerated=True,
                           displayName=f"best_{metric}", runsCountToCompare=trials))
    return cards + [_card("BAR", key, metricKey=key, isGenerated=True, deleted=True)
                    for key in numbers]


def state(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The runs table's state: the trials only, its columns, sorted by each trial's best
    objective, best first; every trial shown in the charts (the UI's default is the first 10),
    the view's own charts."""
    objective = objective_rules.primary(spec)
    table: dict[str, Any] = {"searchFilter": TRIALS_ONLY, "selectedColumns": columns(spec),
                             "runsHiddenMode": "SHOW_ALL", "compareRunCharts": charts(spec),
                             "compareRunSections": [SECTION], "isAccordionReordered": False,
                             "hideEmptyCharts": True}
    if objective.get("metric"):
        table.update(orderByKey=_column("metrics", f"best_{objective['metric']}"),
                     orderByAsc=objective.get("mode") == "min")
    return table


def tag_value(spec: Mapping[str, Any], now_ms: int) -> str:
    """The experiment tag's value: a saved view as MLflow's UI stores one."""
    metric = objective_rules.primary(spec).get("metric")
    name = f"trials, best {metric} first" if metric else "trials"
    return json.dumps({"name": name, "createdAt": now_ms, "updatedAt": now_ms,
                       "state": json.dumps(state(spec))})
