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


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file."""
    from search.spec.model import SearchSpec

    schema = SearchSpec.model_json_schema()
    names = trial_schema.searchable()
    props = schema["properties"]
    props["fixed"] = {**props["fixed"], "description": "training fields every trial shares",
                      "properties": {n: field_schema(n) for n in names},
                      "additionalProperties": False}
    props["space"] = {**props["space"], "description": "training fields the search varies: "
                      "{float: [low, high], log: true}, {int: [low, high]} or {choice: [...]}",
                      "propertyNames": {"enum": names}}
    data = schema["$defs"]["DataSpec"]["properties"]
    for name in data:
        allowed: Optional[list] = knob_of(trial_schema.fields_of(DataConfig)[name]).allowed()
        if allowed is not None and "enum" not in data[name]:
            data[name]["enum"] = list(allowed)
    return {"$schema": DIALECT, **schema, "title": TITLE}


def schema_text() -> str:
    """The schema as the committed file holds it: indented, keys in the model's order."""
    return json.dumps(spec_schema(), indent=2) + "\n"
