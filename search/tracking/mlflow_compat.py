"""Every private name of MLflow this product reaches, gathered in one module.

MLflow has no public way to ask which schema revision a complete store of this version has (its
own check, `_verify_schema`, compares against it), nor to migrate a store to a given revision
(the tests build an older store with it). When an upgrade renames one of them,
`tests/search/tracking/test_mlflow_compat.py` fails on the name in `PRIVATE` instead of every
launch failing at its pre-flight. Nothing else in `search/` may touch an underscore name of
MLflow.
"""

from __future__ import annotations

from typing import Any

# (module, name) pairs reached below; the compatibility test imports each.
PRIVATE = {"mlflow.store.db.utils": ("_get_latest_schema_revision", "_get_alembic_config")}


def schema_head() -> str:
    """The alembic revision of a complete store of the installed MLflow."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def alembic_config(uri: str) -> Any:
    """MLflow's alembic configuration for the database at `uri` (its migrations, run with
    alembic's `command.upgrade(config, revision)`)."""
    from mlflow.store.db.utils import _get_alembic_config

    return _get_alembic_config(uri)
