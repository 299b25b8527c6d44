"""A spec to start from (`resnet-search init`): a recipe per dataset, written with every field's
meaning, default and choices as comments.

The recipes (RECIPES, over GENERIC) are the one hand-chosen part: which values a first search on
a dataset sets. Everything the comments say (what a field means, its default, its choices, the
fields a section has) is read from the spec's JSON Schema (search.spec.json_schema), itself the
model's and the trial schema's: a field, a sampler or a registry entry added there appears here,
and a recipe that no longer validates fails the test that validates every dataset's template.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import yaml

# What a first search sets on any dataset: a CPU-sized ResNet-20 search over the source
# articles' residual tricks and the optimiser's two most sensitive knobs.
GENERIC: dict[str, Any] = {
    "objective": {"metric": "val_acc", "mode": "max"},
    "budget": {"trials": 16, "max_epochs": 10},
    "trial": {"resources": {"cpu": 1, "gpu": 0}},
    "sampler": {"type": "tpe", "seed": 0},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 3},
    "fixed": {"depth": 20, "optimizer": "nesterov", "schedule": "cosine"},
    "space": {"block": {"choice": ["basic", "preact"]},
              "residual": {"choice": ["add", "scaled", "normalized"]},
              "residual_scale": {"float": [0.1, 1.0], "when": {"residual": "scaled"}},
              "lr": {"float": [1e-3, 0.5], "log": True},
              "weight_decay": {"float": [1e-5, 1e-2], "log": True},
              "augment": {"float": [0.0, 0.5]}},
    "tracking": {"mlflow_uri": "sqlite:///mlflow.db"},
    "storage_path": "runs",
}
_CIFAR = {
    "note": "sized for GPUs: four trials share each GPU (gpu: 0.25)",
    "data": {"download": True},
    "budget": {"trials": 64, "max_epochs": 30},
    "trial": {"resources": {"cpu": 2, "gpu": 0.25}},
    "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 3},
    "fixed": {"optimizer": "nesterov", "batch_size": 512, "warmup_epochs": 1.0},
    "space": {"block": {"choice": ["basic", "bottleneck", "preact"]},
              "depth": {"choice": [20, 56]},
              "width": {"choice": [0.5, 1.0, 2.0]},
              "residual": {"choice": ["add", "scaled", "normalized"]},
              "residual_scale": {"float": [0.0, 1.0], "when": {"residual": "scaled"}},
              "lr": {"float": [0.01, 2.0], "log": True},
              "weight_decay": {"float": [1e-5, 1e-3], "log": True},
              "schedule": {"choice": ["step", "cosine", "onecycle"]},
              "augment": {"float": [0.0, 1.0]},
              "label_smoothing": {"float": [0.0, 0.2]}},
}
# Per dataset, what differs from GENERIC (a section given here replaces GENERIC's, `data`
# adds to {dataset: NAME}); `note` is the file's first comment. A dataset without an entry
# gets GENERIC as it is.
RECIPES: dict[str, dict[str, Any]] = {
    "digits": {
        "note": "offline: scikit-learn's bundled handwritten digits, sized for a 2-core CPU (a "
                "few minutes)",
        "data": {"val_fraction": 0.2},
        "budget": {"trials": 12, "max_epochs": 6},
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 5},
        # a narrow net whose zero-initialised branches idle for the first epochs would waste a
        # 6-epoch budget; a mirrored digit is another digit (no flip at test time)
        "fixed": {"depth": 20, "width": 0.5, "batch_size": 64, "optimizer": "nesterov",
                  "schedule": "cosine", "zero_init_residual": False, "tta": False},
    },
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "imagefolder": {
        "note": "your images: data.root holds one folder per class (train/ and test/ below it, "
                "or the classes directly)",
        "data": {"root": "path/to/images", "image_size": 64},
    },
    "synthetic": {
        "note": "random images: a smoke test of the machinery in a minute, not a search",
        "data": {"synthetic_size": 2000},
        "budget": {"trials": 4, "max_epochs": 2},
        "fixed": {"depth": 20, "width": 0.25, "batch_size": 64},
        "space": {"lr": {"float": [1e-3, 0.5], "log": True}},
    },
}
ORDER = ("name", "data", "objective", "constraints", "budget", "trial", "sampler", "scheduler",
         "fixed", "space", "tracking", "storage_path", "warm_start")
# Sections a new search leaves out, shown as a commented example.
EXAMPLES = {"warm_start": {"from": ["runs/an-earlier-search"], "top": 10},
            "constraints": [{"metric": "params", "max": 1.0e6}]}
_COLUMN = 40  # where comments start


def recipe(dataset: str, name: Optional[str] = None) -> dict[str, Any]:
    """The spec `init` writes for `dataset` (a plain mapping `parse_spec` accepts)."""
    own = RECIPES.get(dataset, {})
    spec = copy.deepcopy({k: v for k, v in {**GENERIC, **own}.items() if k != "note"})
    spec["data"] = {"dataset": dataset, **copy.deepcopy(own.get("data", {}))}
    spec["name"] = name or f"{dataset}-search"
    return spec


def flow(value: Any) -> str:
    """A value as one line of YAML (flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _comment(prop: dict[str, Any]) -> str:
    text = prop.get("description", "")
    choices = prop.get("enum") or next((p["enum"] for p in prop.get("anyOf", []) if "enum" in p),
                                       None)
    if choices:
        text += f"; one of {', '.join(map(flow, choices))}"
    return text


def _line(indent: int, key: str, value: Any, prop: dict[str, Any], active: bool) -> str:
    body = f"{' ' * indent}{'' if active else '# '}{key}: {flow(value)}"
    note = _comment(prop)
    return f"{body.ljust(_COLUMN - 1)} # {note}" if note else body


def _mapping(schema: dict[str, Any], definition: dict[str, Any], given: dict[str, Any],
             indent: int, skip: frozenset = frozenset()) -> list[str]:
    """A section's fields in the schema's order: the given ones set, the others commented out
    with their default."""
    lines = []
    for key, prop in definition.get("properties", {}).items():
        ref = _resolve(schema, prop)
        if key in given and isinstance(given[key], dict) and "properties" in ref:
            lines.append(f"{' ' * indent}{key}:".ljust(_COLUMN - 1) + f" # {_comment(prop)}")
            lines += _mapping(schema, ref, given[key], indent + 2)
        elif key in given:
            lines.append(_line(indent, key, given[key], {**ref, **prop}, True))
        elif "default" in prop and key not in skip:
            lines.append(_line(indent, key, prop["default"], prop, False))
    return lines


def _resolve(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    """The definition a property refers to: its own `$ref`, or that of the first member of an
    `anyOf` that has one (`objective`: a mapping, or a list of them)."""
    ref = prop.get("$ref") or next((m["$ref"] for m in prop.get("anyOf", []) if "$ref" in m),
                                   None)
    return schema["$defs"][ref.rsplit("/", 1)[1]] if ref else prop


def _union(schema: dict[str, Any], prop: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """A sampler or scheduler section: its type (and the others), then that type's fields."""
    mapping = prop["discriminator"]["mapping"]
    definition = _resolve(schema, {"$ref": mapping[given["type"]]})
    kinds = {"description": f"one of {', '.join(mapping)}"}
    return [_line(2, "type", given["type"], kinds, True),
            *_mapping(schema, definition, {k: v for k, v in given.items() if k != "type"}, 2,
                      skip=frozenset({"type"}))]


def render(spec: dict[str, Any], schema: dict[str, Any], intro: list[str]) -> str:
    """`spec` as a commented YAML file: `intro` as its header, then each section with what
    its fields mean, the defaults it leaves and the choices a field has."""
    lines = [f"# {line}" if line else "#" for line in intro]
    props = schema["properties"]
    for section in ORDER:
        prop = props[section]
        if section not in spec:
            if section in EXAMPLES:
                lines += ["", _line(0, section, EXAMPLES[section], prop, False)]
            continue
        value = spec[section]
        if not isinstance(value, dict):
            lines += ["", _line(0, section, value, prop, True)]
            continue
        lines += ["", f"{section}:".ljust(_COLUMN - 1) + f" # {prop.get('description', '')}"]
        if "discriminator" in prop:
            lines += _union(schema, prop, value)
        elif section == "space":
            fields = props["fixed"]["properties"]
            lines += [_line(2, key, param, fields.get(key, {}), True)
                      for key, param in value.items()]
        else:
            definition = _resolve(schema, prop)
            skip = frozenset(spec.get("space", {})) if section == "fixed" else frozenset()
            lines += _mapping(schema, definition, value, 2, skip)
    return "\n".join(lines) + "\n"


# The file beside a spec that its first line points editors at (as the shipped spaces/ do).
SCHEMA_FILE = "spec.schema.json"


def schema_line(schema_file: str = SCHEMA_FILE) -> str:
    """The modeline editors with the YAML language server read (VS Code, Neovim, Helix...)."""
    return f"# yaml-language-server: $schema=./{schema_file}"


def template(dataset: str, name: Optional[str] = None, file_name: str = "search.yaml",
             schema_file: Optional[str] = SCHEMA_FILE) -> str:
    """The text `resnet-search init --dataset DATASET` writes to `file_name`, its first line
    pointing editors at `schema_file` beside it (none: no such line)."""
    from search.spec.json_schema import spec_schema

    note = RECIPES.get(dataset, {}).get("note", "")
    editors = ([f"Editors complete and check it against {schema_file} beside it (first line; "
                "rewrite",
                f"that file with `resnet-search schema -o {schema_file}` after an upgrade)."]
               if schema_file else
               ["Editors: `resnet-search schema -o spec.schema.json` beside this file and a first",
                f"line `{schema_line()}` complete and check it."])
    intro = [f"A resnet-search spec to start from: {dataset}" + (":" if note else "."),
             *([f"{note}."] if note else []), "",
             "Lines set are a first search; commented lines show a field's default (uncomment",
             "to change it) and every comment says what a field means and which values it takes.",
             f"Check it:  resnet-search validate {file_name}",
             f"Run it:    resnet-search launch {file_name}",
             *editors]
    text = render(recipe(dataset, name), spec_schema(), intro)
    return f"{schema_line(schema_file)}\n{text}" if schema_file else text
