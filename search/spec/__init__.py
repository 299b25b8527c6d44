"""The spec: a YAML file, strictly loaded, validated into a `SearchSpec` against the trial schema
(`resnet_core.config`), every broken rule a `Problem` naming field, value and rule.

Imports nothing of Ray, Optuna, MLflow or torch. Its pure modules (`schema`, `objective`, `job`,
`problems`, `outcome`) do not import Pydantic either: Ray workers use them to build a trial's
config and to report how it ended.
Names are exported lazily so that a worker importing `search.spec.job` does not load Pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SearchSpec": "search.spec.model", "load_spec": "search.spec.model",
    "parse_spec": "search.spec.model", "SpecError": "search.spec.problems",
    "Problem": "search.spec.problems", "TrialJob": "search.spec.job",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
