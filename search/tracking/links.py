"""Every address into MLflow's UI that the product prints or stores: one function builds them.

MLflow 3's UI shows an experiment in one of two modes, GenAI ("GenAI apps & agents": traces,
judges, an overview) or model training ("Machine learning": the runs table, charts, compare).
It takes the mode from the address's `workflowType` parameter (`genai` or `machine_learning`),
else from what this browser last chose, GenAI by default; the experiment's own kind
(`mlflow.experimentKind` = `custom_model_development`, which the launch sets) only decides it
where the UI's mode switch is off. A bare `#/experiments/1/runs/<id>` link therefore opens the
GenAI pages for a newcomer, so every link here carries `workflowType=machine_learning`; the
routes are those of MLflow's UI (`/experiments/:id/runs`, `/experiments/:id/runs/:run`,
`/compare-runs?runs=[...]&experiments=[...]`). Pure; no MLflow import.
"""

from __future__ import annotations

import json
from typing import Iterable, Optional
from urllib.parse import quote

MODE_KEY, MODE = "workflowType", "machine_learning"
SHARE_KEY = "viewStateShareKey"  # the address parameter that opens a saved view of the runs


def mlflow_link(server: str, experiment_id: str, *, run_id: Optional[str] = None,
                compare: Iterable[str] = (), saved_view: Optional[str] = None) -> str:
    """The page of MLflow's UI at `server` (an address without credentials; "" gives the
    fragment alone, `#/...`, a link that MLflow's own pages resolve on whichever server shows
    them): the experiment's runs table (in `saved_view` when given), one run's page
    (`run_id`), or the compare page of the runs `compare`, always in model-training mode."""
    query = [f"{MODE_KEY}={MODE}"]
    compared = list(compare)
    if compared:
        path = "compare-runs"
        query = [f"runs={_json(compared)}", f"experiments={_json([experiment_id])}", *query]
    elif run_id:
        path = f"experiments/{quote(experiment_id)}/runs/{quote(run_id)}"
    else:
        path = f"experiments/{quote(experiment_id)}/runs"
        if saved_view:
            query.append(f"{SHARE_KEY}={quote(saved_view)}")
    return f"{server.rstrip('/')}/#/{path}?{'&'.join(query)}" if server else (
        f"#/{path}?{'&'.join(query)}")


def _json(values: list[str]) -> str:
    """A JSON list as MLflow's compare page reads it, its quotes escaped for an address."""
    return quote(json.dumps(values, separators=(",", ":")), safe="[],")
