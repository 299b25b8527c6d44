"""A local SQLite tracking store, made ready before a launch or a retrain uses it: with no deadline
(local work only gets slower on a busy machine) and never left half-built.

A new store is made aside: MLflow creates and migrates `NAME.creating-<random>` in the same
directory (dozens of migrations: seconds, more under load), which is then moved into place with
`os.replace`. A store of an older MLflow that MLflow would upgrade itself is upgraded the same
way, on a copy (`NAME.upgrading-<random>`). Both run under the lock file `NAME.lock`, which
serialises the processes that would build the same store; a crash at any moment leaves no
store (or the old one) and a leftover file aside, which the next builder removes.

How long to wait for another process that holds the database locked is SQLite's busy timeout;
past it the store is named as locked. A store left half-built (by an interrupted creation in an
earlier resnet-search, which migrated it in place, or by MLflow itself) is named, with the fix,
in one line: MLflow's own answer is a page of SQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from search.tracking import mlflow_compat

Note = Callable[[str], None]

# What a SQLite file holds, as `condition` reads it.
NEW = "new"                # no file, or one without tables: MLflow would create its schema
COMPLETE = "complete"      # MLflow's schema at the installed MLflow's revision
BEHIND = "behind"          # an older revision, or none yet: MLflow would migrate it
HALF_BUILT = "half-built"  # a migration that stopped half-way: MLflow fails on it with SQL
FOREIGN = "foreign"        # tables of some other program

ASIDE = {NEW: ".creating-", BEHIND: ".upgrading-"}  # where each kind of build is made
TMP_TABLE = "_alembic_tmp_"  # alembic rebuilds a SQLite table through one of these


@dataclass(frozen=True)
class Contents:
    tables: frozenset[str]
    revision: Optional[str]  # alembic's record of the last migration, None without one
    runs: int


def condition(contents: Optional[Contents], head: str) -> str:
    """What a store holds, from its tables and alembic revision; None: no file (pure)."""
    if contents is None:
        return NEW
    tables = contents.tables
    if not tables - {"alembic_version"}:
        return NEW  # MLflow, too, reads a file with only alembic's table as empty
    if "experiments" not in tables:
        return FOREIGN
    if contents.revision == head:
        return COMPLETE  # as MLflow judges it (a stray table of alembic's is no harm then)
    if any(name.startswith(TMP_TABLE) for name in tables):
        return HALF_BUILT  # a table rebuild stopped between its copy and its rename
    # No revision: MLflow's first tables, stopped before its first migration. MLflow finishes
    # that, as it upgrades an older store; whether it can finish any other is known only by
    # trying (on a copy).
    return BEHIND


def half_built(db: Path, why: str, runs: int) -> str:
    """The one line for a store MLflow cannot finish (pure)."""
    kept = ("it holds no runs, so nothing is lost" if runs == 0 else
            f"its {runs} run(s) stay readable in {db}.broken with sqlite3")
    return (f"{db} was left half-built by an interrupted creation or upgrade ({why}); "
            f"resnet-search before this version could leave one. Move it away (mv {db} "
            f"{db}.broken) and launch again: a new store is created; {kept}")


def locked(db: Path) -> str:
    return (f"locked by another process ({db}): SQLite waited for it and gave up; let that "
            f"process finish (fuser {db} names it) and launch again")


def is_locked(error: BaseException) -> bool:
    """SQLite's busy timeout ran out (however MLflow or SQLAlchemy wrapped the error)."""
    seen: Optional[BaseException] = error
    while seen is not None:
        if "database is locked" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def read(db: Path, busy_s: float) -> Optional[Contents]:
    """The file's tables, alembic revision and number of runs; None when there is no file.
    Waits at most `busy_s` for another process's lock (sqlite3.OperationalError after)."""
    if not db.exists():
        return None
    conn = sqlite3.connect(db, timeout=busy_s, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one read transaction: one wait for the lock, one snapshot
        tables = frozenset(row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"))
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0] if "runs" in tables else 0
        conn.execute("COMMIT")
        return Contents(tables, revision, runs)
    finally:
        conn.close()


def ready(db: Path, artifact_root: str, busy_s: float, note: Note) -> Optional[str]:
    """Why the store at `db` cannot be used as it is, or None once it is complete (created or
    upgraded aside when it needs to be). `artifact_root` is where the artifacts of MLflow's
    default experiment go in a new store. Raises what SQLite raises: `is_locked` tells a lock
    held past `busy_s` by another process."""
    if condition(read(db, busy_s), mlflow_compat.schema_head()) == COMPLETE:
        return None  # the common case: no lock file needed
    db.parent.mkdir(parents=True, exist_ok=True)  # as MLflow does for a new database
    with _build_lock(db, note):
        return _made_ready(db, artifact_root, busy_s, note)


def _made_ready(db: Path, artifact_root: str, busy_s: float, note: Note) -> Optional[str]:
    """Under the build lock: look again (another process may have built it meanwhile), then
    build what is missing."""
    _remove_leftovers(db)  # what a builder killed before its os.replace left
    contents = read(db, busy_s)
    state = condition(contents, mlflow_compat.schema_head())
    if state == COMPLETE:
        return None
    if state == HALF_BUILT:
        assert contents is not None
        leftover = sorted(t for t in contents.tables if t.startswith(TMP_TABLE))
        return half_built(db, f"a table rebuild never finished: {', '.join(leftover)}",
                          contents.runs)
    if state == FOREIGN:
        assert contents is not None
        return (f"{db} is a SQLite database of another program (tables "
                f"{', '.join(sorted(contents.tables)[:5])}), not an MLflow store; give "
                "tracking.mlflow_uri a file of its own")
    if state == NEW:
        note(f"creating the MLflow store {db} (MLflow's dozens of migrations: seconds, longer "
             "on a busy machine; made aside and moved into place when complete)")
        return _built_aside(db, artifact_root, busy_s, seed=False)
    assert contents is not None
    note(f"upgrading the MLflow store {db} (schema {contents.revision or 'not begun'}) to the "
         "installed MLflow's, on a copy moved into place when complete")
    return _built_aside(db, artifact_root, busy_s, seed=True)


@contextlib.contextmanager
def _build_lock(db: Path, note: Note) -> Iterator[None]:
    """The lock file next to the database. flock is released when the file closes, and by the
    kernel if this process dies; so a build killed at any moment blocks nobody."""
    with open(f"{db}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            note(f"waiting for another process that is creating or upgrading the MLflow store "
                 f"{db}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_leftovers(db: Path) -> None:
    for infix in ASIDE.values():  # the file and its SQLite journal
        for path in glob.glob(f"{glob.escape(str(db))}{infix}*"):
            Path(path).unlink(missing_ok=True)


def _built_aside(db: Path, artifact_root: str, busy_s: float, *, seed: bool) -> Optional[str]:
    """MLflow builds the store in a file next to `db` (from a copy of it when `seed`), which
    then replaces `db`. Why it could not, or None."""
    from sqlalchemy.exc import DBAPIError

    aside = db.with_name(f"{db.name}{ASIDE[BEHIND if seed else NEW]}{secrets.token_hex(4)}")
    try:
        if seed:
            _copy(db, aside, busy_s)
        try:
            _mlflow_builds(aside, artifact_root)
        except DBAPIError as error:
            if is_locked(error):
                raise
            first = str(getattr(error, "orig", None) or error).splitlines()[0]
            if not seed:
                return f"MLflow could not create the store {db}: {first}"
            # The copy is thrown away: the store itself is as it was.
            return half_built(db, f"MLflow's upgrade of it fails: {first}",
                              (read(db, busy_s) or Contents(frozenset(), None, 0)).runs)
        except Exception as error:  # noqa: BLE001 - MLflow's own refusal, in one line
            first = (str(error).splitlines() or [type(error).__name__])[0]
            return f"MLflow cannot {'upgrade' if seed else 'create'} the store {db}: {first}"
        os.replace(aside, db)
        _sync(db.parent)  # the rename itself survives a power cut
        return None
    finally:
        aside.unlink(missing_ok=True)
        Path(f"{aside}-journal").unlink(missing_ok=True)


def _copy(db: Path, aside: Path, busy_s: float) -> None:
    """A consistent copy of the database (SQLite's backup: readers and writers may go on)."""
    source, target = sqlite3.connect(db, timeout=busy_s), sqlite3.connect(aside)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _mlflow_builds(aside: Path, artifact_root: str) -> None:
    """MLflow's own first use of a store: its schema created or migrated to the installed
    revision, and its default experiment. Its connections are closed after: the file moves."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    made = SqlAlchemyStore(f"sqlite:///{aside.resolve()}", artifact_root)
    made.engine.dispose()


def _sync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
