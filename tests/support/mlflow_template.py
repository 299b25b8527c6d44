"""One empty MLflow SQLite store per test session, copied for every test that needs a fresh one.

MLflow builds a new SQLite store through dozens of schema migrations: seconds each time, more on
a busy machine, and most tracking tests need a fresh store. The template is built once, by the
product's own probe (MLflow's migrations, as a launch creates a store), and each test gets a
byte copy of it: its own private database, at the schema head, with only MLflow's default
experiment in it. Tests of store *creation* itself (tests/search/tracking/test_sqlite_store.py,
test_store.py's racing launches) still build theirs from nothing."""

from __future__ import annotations

import shutil
from pathlib import Path


def build_template(db: Path) -> Path:
    """A new, empty, complete MLflow store at `db` (MLflow's own migrations, run by `probe`)."""
    from search.tracking.store import probe

    problem = probe(f"sqlite:///{db}")
    assert problem is None, f"the MLflow template store could not be built: {problem}"
    return db


def copy_template(template: Path, db: Path) -> str:
    """A private copy of `template` at `db` (its folder made); its `sqlite:///` URI."""
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, db)
    return f"sqlite:///{db}"
