"""Every private name of MLflow this product reaches, gathered in one module.

MLflow has no public way to ask which schema revision a complete store of this version has (its
own check, `_verify_schema`, compares against it), nor to migrate a store to a given revision
(the tests build older stores with it). When an upgrade renames one of them,
`tests/search/tracking/test_mlflow_compat.py` fails on the name in `PRIVATE` instead of every
launch failing at its pre-flight. Nothing else in `search/` may touch an underscore name of
MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

# (module, name) pairs reached below; the compatibility test imports each.
PRIVATE = {"mlflow.store.db.utils": ("_get_latest_schema_revision", "_get_alembic_config")}


def schema_head() -> str:
    """The alembic revision of a complete store of the installed MLflow."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def alembic_config(uri: str) -> Config:
    """MLflow's alembic configuration for the database at `uri` (its migrations, run with
    alembic's `command.upgrade(config, revision)`)."""
    from mlflow.store.db.utils import _get_alembic_config

    return _get_alembic_config(uri)


def build_schema(uri: str, revision: str) -> None:
    """Give the new database at `uri` MLflow's schema as of `revision`, as an older MLflow made
    it: its initial tables, then its migrations up to that one (the tests build older and
    half-built stores with it)."""
    import sqlalchemy
    from alembic import command
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    engine = sqlalchemy.create_engine(uri)
    try:
        InitialBase.metadata.create_all(engine)
        config = alembic_config(uri)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
