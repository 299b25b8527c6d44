"""The spec's JSON Schema, for editors: `resnet-search schema` prints it, `spaces/spec.schema.json`
is its committed copy, and a spec file that starts with
`# yaml-language-server: $schema=./spec.schema.json` is completed and checked as it is typed.

Pydantic's `model_json_schema()` of `SearchSpec`, with what Pydantic cannot see filled in from
the one schema of a trial (`resnet_core.config`, read through `search.spec.schema`): the fields
`fixed` may set (type, default, bounds, choices, what each means), the names `space` may vary,
and the data section's registry choices (datasets). Those choices are validated lazily by the
model (the registries import torch), so they are read here, when the schema is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from resnet_core.config import DataConfig, TrainConfig, knob_of
from search.spec import schema as trial_schema

# The JSON Schema dialect Pydantic writes (the draft editors' YAML servers read).
DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "resnet-search spec"
_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def field_schema(name: str, cls: type = TrainConfig) -> dict[str, Any]:
    """One config field as JSON Schema: its type (null too when optional), default, bounds,
    choices and meaning."""
    f = trial_schema.fields_of(cls)[name]
    knob = knob_of(f)
    base, optional = trial_schema.field_type(cls, name)
    typed: dict[str, Any] = ({"type": "array", "items": {"type": "number"}} if base is tuple
                             else {"type": _TYPES[base]})
    typed.update({_BOUNDS[k]: getattr(knob, k) for k in _BOUNDS if getattr(knob, k) is not None})
    allowed = knob.allowed()
    if allowed is not None:
        typed["enum"] = list(allowed)
    default = list(f.default) if isinstance(f.default, tuple) else f.default
    described = {"description": knob.doc, "default": default}
    if optional:
        return {"anyOf": [typed, {"type": "null"}], **described}
    return {**typed, **described}


# What each field of the spec's own sections means (the trial's fields carry theirs in
# resnet_core.config): the schema's descriptions, which editors show on hover and `init`
# writes as comments. A field of the same name means the same in every sampler or scheduler.
SECTIONS = {
    "name": "the experiment: its directory under storage_path and its MLflow experiment",
    "data": "the data every trial trains on (not searched)",
    "objective": "what the search optimises, per epoch: one {metric, mode}, or a list of them "
                 "(several objectives: a Pareto front; the first is the primary one)",
    "constraints": "bounds a trial must hold to count, e.g. {metric: params, max: 1.0e6}",
    "budget": "how much the search may spend",
    "trial": "what one trial gets and how its failures are handled",
    "sampler": "the searcher that proposes each trial's configuration (Optuna)",
    "scheduler": "the scheduler that stops weak trials early (Ray Tune)",
    "fixed": "training fields every trial shares",
    "space": "training fields the search varies: {float: [low, high], log: true}, "
             "{int: [low, high]} or {choice: [...]}, each optionally only `when` another holds",
    "tracking": "where every trial is logged (MLflow)",
    "storage_path": "where the experiment's record, checkpoints and Ray state live: a directory "
                    "(relative to this file) or s3://bucket/prefix",
    "warm_start": "earlier experiments whose trials the searcher is told before it proposes",
}
FIELDS = {
    "metric": "the result compared between trials",
    "mode": "max for accuracies, min for losses",
    "trials": "configurations to train (one trial each)",
    "max_epochs": "epochs of a trial that is never stopped early",
    "time_limit_s": "stop the whole search after this many seconds",
    "repeat": "allow more trials than the space has distinct configurations (a repeat study)",
    "resources": "what each trial reserves",
    "cpu": "CPUs per trial",
    "gpu": "GPUs per trial: 0, a whole number or 1/k (0.25 packs 4 trials on a GPU)",
    "max_concurrent": "trials at once (null: as many as the resources allow)",
    "max_failures": "retries of a trial that raised",
    "abort_on_same_error": "stop the search when its first N ended trials all failed with the "
                           "same error (0: never)",
    "seed": "the sampler's seed (null: random)",
    "stopped_trials": "how trials stopped early reach Optuna: pruned or complete",
    "n_startup_trials": "random trials before the model proposes",
    "multivariate": "model the parameters jointly",
    "constant_liar": "assume running trials end badly, so that parallel proposals differ",
    "sigma0": "CMA-ES's initial step size (null: a sixth of each range)",
    "qmc_type": "the low-discrepancy sequence",
    "scramble": "scramble the sequence",
    "random_fraction": "share of proposals drawn at random",
    "min_points": "results a rung needs before the model is fitted there (null: parameters + 1)",
    "n_ei_candidates": "candidates scored per proposal",
    "population_size": "trials per generation",
    "swapping_prob": "chance that a crossover takes each parameter from the other parent",
    "max": "the largest value a trial may have",
    "min": "the smallest value a trial may have",
    "grace_period": "epochs every trial runs before it can be stopped",
    "reduction_factor": "1/reduction_factor of the trials go on at each rung",
    "brackets": "ASHA brackets (1: the usual)",
    "mlflow_uri": "MLflow tracking URI: sqlite:///FILE (relative to this file) or a server",
    "experiment": "the MLflow experiment (null: the spec's name)",
    "from": "spec files, experiment directories or s3:// URIs of earlier experiments",
    "top": "tell only the best N earlier trials (null: all)",
    "enqueue": "configurations to try first",
    "queue_best": "train the N best completed configurations of each earlier experiment first",
    "choice": "the values to choose from",
    "float": "[low, high]",
    "int": "[low, high]",
    "log": "sample on a log scale",
    "step": "sample on a grid of this step",
    "when": "vary only while another parameter takes one of these values",
}


def described(schema: dict[str, Any]) -> None:
    """Fill in the descriptions of SECTIONS and FIELDS where Pydantic had none."""
    for name, text in SECTIONS.items():
        schema["properties"][name].setdefault("description", text)
    for definition in schema["$defs"].values():
        for name, prop in definition.get("properties", {}).items():
            if name in FIELDS:
                prop.setdefault("description", FIELDS[name])


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file."""
    from search.spec.model import SearchSpec

    schema = SearchSpec.model_json_schema()
    names = trial_schema.searchable()
    props = schema["properties"]
    props["fixed"] = {**props["fixed"], "properties": {n: field_schema(n) for n in names},
                      "additionalProperties": False}
    props["space"] = {**props["space"], "propertyNames": {"enum": names}}
    data = schema["$defs"]["DataSpec"]["properties"]
    for name in data:
        allowed: Optional[list] = knob_of(trial_schema.fields_of(DataConfig)[name]).allowed()
        if allowed is not None and "enum" not in data[name]:
            data[name]["enum"] = list(allowed)
    described(schema)
    return {"$schema": DIALECT, **schema, "title": TITLE}


def is_spec_schema(path: Any) -> bool:
    """Whether the file at `path` is a schema this program wrote (of any version)."""
    try:
        return json.loads(Path(path).read_text()).get("title") == TITLE
    except (OSError, ValueError, AttributeError):
        return False


def schema_text() -> str:
    """The schema as the committed file holds it: indented, keys in the model's order."""
    return json.dumps(spec_schema(), indent=2) + "\n"
