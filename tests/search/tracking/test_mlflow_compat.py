"""Each private MLflow name search/tracking/mlflow_compat.py reaches still exists, and means what
the pre-flight takes it to mean."""

from __future__ import annotations

import importlib
import sqlite3

import pytest

from search.tracking.mlflow_compat import (PRIVATE, alembic_config, build_schema,
                                          schema_head)


@pytest.mark.parametrize("module, name", [(m, n) for m, names in PRIVATE.items()
                                          for n in names])
def test_the_private_name_exists(module, name):
    assert callable(getattr(importlib.import_module(module), name))


def test_a_store_mlflow_creates_records_the_schema_head(store):
    (revision,) = sqlite3.connect(store.db).execute("SELECT version_num FROM alembic_version")
    assert revision == (schema_head(),)
    assert alembic_config(store.uri).get_main_option("script_location").endswith("db_migrations")


def test_an_older_schema_is_built_to_the_revision_asked(tmp_path):
    db = tmp_path / "old.db"
    build_schema(f"sqlite:///{db}", "bda7b8c39065")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
        ("bda7b8c39065",)]
    columns = {row[1] for row in conn.execute("PRAGMA table_info(trace_info)")}
    assert "client_request_id" not in columns  # added by the next revision, cbc13b556ace
