"""resnet-search: hyper-parameter search for ResNet variants (see README.md).

The Python API (`search.open_experiment`, `search.validate`, `search.launch`, `search.submit`)
lives in `search.api` and is loaded on first use (PEP 562), so `import search` stays instant and
loads no engine.
"""

from __future__ import annotations

from typing import Any

_API = ("Best", "Experiment", "NoSuchTarget", "SpecError", "launch", "open_experiment", "submit",
        "validate")

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        from search import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
