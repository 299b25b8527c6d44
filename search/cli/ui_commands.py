"""`ui`: open the MLflow UI on an experiment's runs (owned by the MLflow-readability work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
