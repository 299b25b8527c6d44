"""A local SQLite store on a busy machine: its creation has no deadline and is never left half-built
(a creator SIGKILLed at any moment leaves no store), a store locked by another process is named
as locked, and a store half-built by an older version is named with its fix in one line. Real
MLflow, real SQLite, real processes."""

from __future__ import annotations

import fcntl
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from search.tracking import sqlite_store
from search.tracking.mlflow_compat import build_schema, schema_head
from search.tracking.sqlite_store import (BEHIND, COMPLETE, FOREIGN, HALF_BUILT, NEW, Contents,
                                          condition, read)
from search.tracking.store import probe

HEAD = "h3ad"
# The revision before MLflow's "add V3 trace schema columns" (trace_info.client_request_id...).
BEFORE_V3_TRACES = "bda7b8c39065"


def contents(*tables: str, revision=None) -> Contents:
    return Contents(frozenset(tables), revision, 0)


@pytest.mark.parametrize("found, expected", [
    (None, NEW),  # no file
    (contents(), NEW),  # a file SQLite made, no table yet
    (contents("alembic_version"), NEW),  # MLflow, too, calls that empty
    (contents("experiments", "runs", "alembic_version", revision=HEAD), COMPLETE),
    (contents("experiments", "runs", "alembic_version", revision="0ld"), BEHIND),
    (contents("experiments"), BEHIND),  # MLflow's first tables, no migration yet: it finishes it
    (contents("experiments", "_alembic_tmp_experiments", "alembic_version", revision="0ld"),
     HALF_BUILT),
    (contents("experiments", "_alembic_tmp_trace_info", "alembic_version", revision=HEAD),
     COMPLETE),  # MLflow opens it: its schema is at the head
    (contents("users", "orders"), FOREIGN),
])
def test_what_a_sqlite_file_holds(found, expected):
    assert condition(found, HEAD) == expected


def complete(db: Path) -> bool:
    return condition(read(db, 5.0), schema_head()) == COMPLETE


def aside(db: Path) -> list[Path]:
    """The files a builder makes next to the store (and their SQLite journals)."""
    found = db.parent.glob(f"{db.name}.*") if db.parent.is_dir() else []
    return sorted(p for p in found if ".creating-" in p.name or ".upgrading-" in p.name)


def building(db: Path) -> bool:
    """MLflow is writing a new store's schema aside (the file has pages)."""
    try:
        return any(p.stat().st_size > 0 for p in aside(db))
    except FileNotFoundError:  # it moved into place between the listing and the look
        return False


# --- (a) a creator SIGKILLed mid-creation leaves no store; the next creation succeeds ----------

CREATE = """
import sys
from search.tracking.store import probe
print(repr(probe(sys.argv[1])))
"""


def test_a_creation_killed_midway_leaves_no_store_and_the_next_one_succeeds(tmp_path):
    db = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{db}"
    creator = subprocess.Popen([sys.executable, "-c", CREATE, uri], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    # Wait for MLflow to be writing its schema aside (the file has pages), then kill it.
    while creator.poll() is None and not building(db):
        time.sleep(0.002)
    creator.send_signal(signal.SIGKILL)
    out, err = creator.communicate(timeout=60)
    assert creator.returncode == -signal.SIGKILL, (out, err)  # killed while creating
    assert not db.exists()  # no store at all, rather than half of one
    assert aside(db)  # what the killed creator was building

    notes: list[str] = []
    assert probe(uri, note=notes.append) is None
    assert complete(db)
    assert aside(db) == []  # the next creator removed the leftover
    assert len(notes) == 1 and f"creating the MLflow store {db}" in notes[0]
    assert MlflowClient(uri).get_experiment("0").name == "Default"  # as MLflow makes a store
    assert probe(uri, note=notes.append) is None and len(notes) == 1  # complete: no line


def test_creation_waits_for_another_creator_with_no_deadline(tmp_path):
    """The lock file is held (another launch creating the store): the probe says it waits and
    waits, however long, then finds the store and uses it."""
    db = tmp_path / "mlflow.db"
    notes: list[str] = []
    answers: list = []
    with open(f"{db}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: answers.append(
            probe(f"sqlite:///{db}", timeout_s=0.5, note=notes.append)))
        waiter.start()
        while not notes and waiter.is_alive():
            time.sleep(0.01)
        assert notes and notes[0].startswith("waiting for another process that is creating")
        waiter.join(2.0)  # four times the probe's timeout: it still waits
        assert waiter.is_alive() and not answers
    waiter.join()  # the lock is released: it creates the store
    assert answers == [None] and complete(db)


# --- (b) a store another process holds locked ----------------------------------------------------

HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def held(store):
    """Another process holds the store's exclusive lock (no reader or writer gets in)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store.db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield store
    holder.stdin.close()
    holder.wait(timeout=60)


def test_a_store_locked_by_another_process_is_named_as_locked(held):
    said = probe(held.uri, timeout_s=1.0)
    assert said == sqlite_store.locked(held.db)
    assert said.startswith(f"locked by another process ({held.db})") and "\n" not in said


# --- (c) a store half-built by an older version ------------------------------------------------

@pytest.fixture(scope="module")
def older(tmp_path_factory) -> Path:
    """A store of an older MLflow (its schema at BEFORE_V3_TRACES), built once by MLflow's own
    initial tables and migrations, with one experiment."""
    db = tmp_path_factory.mktemp("older") / "mlflow.db"
    build_schema(f"sqlite:///{db}", BEFORE_V3_TRACES)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO experiments (experiment_id, name, artifact_location, "
                     "lifecycle_stage) VALUES (7, 'kept', '/tmp/kept', 'active')")
    assert read(db, 5.0).revision == BEFORE_V3_TRACES
    return db


def copy_of(db: Path, tmp_path: Path) -> Path:
    (tmp_path / "s").mkdir()
    return Path(shutil.copy(db, tmp_path / "s" / "mlflow.db"))


def column_added(db: Path) -> None:
    """The next migration stopped after its first column: MLflow's upgrade then fails with
    "duplicate column name: client_request_id" (seen after a launch gave up mid-migration)."""
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE trace_info ADD COLUMN client_request_id VARCHAR(50)")


def rebuild_stopped(db: Path) -> None:
    """A batch migration stopped between copying a table and renaming the copy: MLflow's
    upgrade then fails with "table _alembic_tmp_experiments already exists"."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE _alembic_tmp_experiments AS SELECT * FROM experiments")


@pytest.mark.parametrize("interrupt, why", [
    (column_added, "MLflow's upgrade of it fails: duplicate column name: client_request_id"),
    (rebuild_stopped, "a table rebuild never finished: _alembic_tmp_experiments"),
])
def test_a_half_built_store_gets_one_line_with_the_fix(older, tmp_path, interrupt, why):
    db = copy_of(older, tmp_path)
    interrupt(db)
    before = db.read_bytes()
    said = probe(f"sqlite:///{db}")
    assert said == sqlite_store.half_built(db, why, runs=0)
    assert "\n" not in said and "[SQL" not in said
    assert f"mv {db} {db}.broken" in said and "nothing is lost" in said
    assert db.read_bytes() == before and aside(db) == []  # the store is as it was

    db.rename(f"{db}.broken")  # the fix the line names, then the launch again
    assert probe(f"sqlite:///{db}") is None and complete(db)


def test_a_half_built_store_with_runs_says_where_they_stay(older, tmp_path):
    db = copy_of(older, tmp_path)
    rebuild_stopped(db)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage) "
                     "VALUES ('r1', 7, 'active')")
    said = probe(f"sqlite:///{db}")
    assert said.endswith(f"its 1 run(s) stay readable in {db}.broken with sqlite3")


def test_an_older_store_is_upgraded_on_a_copy_and_keeps_its_experiments(older, tmp_path):
    db = copy_of(older, tmp_path)
    notes: list[str] = []
    assert probe(f"sqlite:///{db}", note=notes.append) is None
    assert complete(db) and aside(db) == []
    assert notes == [f"upgrading the MLflow store {db} (schema {BEFORE_V3_TRACES}) to the "
                     "installed MLflow's, on a copy moved into place when complete"]
    assert MlflowClient(f"sqlite:///{db}").get_experiment_by_name("kept").experiment_id == "7"


def test_a_creation_stopped_before_its_first_migration_is_finished(tmp_path):
    """An older launch killed while MLflow made its first tables (no migration recorded)."""
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    db = tmp_path / "mlflow.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    InitialBase.metadata.tables["experiments"].create(engine)
    engine.dispose()
    assert probe(f"sqlite:///{db}") is None and complete(db)


def test_another_programs_database_is_refused(tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    said = probe(f"sqlite:///{db}")
    assert said.startswith(f"{db} is a SQLite database of another program (tables users)")
    assert [row for row in sqlite3.connect(db).execute(
        "SELECT name FROM sqlite_master")] == [("users",)]  # untouched
