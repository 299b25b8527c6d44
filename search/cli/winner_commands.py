"""`export-best` and `retrain`: the winner of a search as a spec, trained again (owned by the
winner work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
