"""`report`: the leaderboard and the plots of a search, as HTML and PNG (owned by the report
work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
