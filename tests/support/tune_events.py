"""Tune's callbacks as a launch runs them, for tests that drive callbacks in-process."""

from __future__ import annotations

from typing import Any


class Fed:
    """A callback as Tune runs it in a launch: every event (`on_*`) reaches the launch's ledger
    first (search/run/tuner.py puts the ledger first among the callbacks), then the callback.
    Everything else (attributes read or set) is the callback's own."""

    def __init__(self, ledger: Any, callback: Any) -> None:
        object.__setattr__(self, "ledger", ledger)
        object.__setattr__(self, "callback", callback)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.callback, name)
        if not name.startswith("on_"):
            return found

        def both(*args: Any, **kwargs: Any) -> Any:
            getattr(self.ledger, name)(*args, **kwargs)
            return found(*args, **kwargs)

        return both

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.callback, name, value)
