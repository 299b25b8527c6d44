"""A tracking URI with a secret in it, through the real CLI: a PostgreSQL store whose password is
in the URI's query (`postgresql+psycopg2://host:port/db?user=...&password=...`, which MLflow
takes as it is). The search runs, is interrupted and resumes, is read, reported, exported and
retrained, and no file the product writes holds the password: the record, the saved spec and
Ray's pickled tuner keep it masked, `export-best` writes it masked, and a command given a
directory or an export gets it back from MLFLOW_TRACKING_URI (or from the spec file)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from driving import (NAME, SMALL_DATA, held, results, runs_of, start_launch, steps, trial_dirs,
                     wait_for)
from ports import free_port

SECRET = "pw-" + os.urandom(8).hex()


def as_postgres(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: its tools run as the `postgres` user."""
    command = list(args) if os.getuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL on 127.0.0.1 that asks TCP clients for a password, with a database and a
    role for MLflow; yields the tracking URI with the password in its query."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    assert initdb, "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    bin_dir = Path(initdb).parent
    base = Path(tempfile.mkdtemp(prefix="pgs-"))  # short: the socket path must fit 107 bytes
    base.chmod(0o777)  # the postgres user writes its socket here
    data, port = base / "data", free_port()
    made = as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                       "--no-locale")
    assert made.returncode == 0, made.stdout + made.stderr
    started = as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-t", "120",
                          "-l", str(data / "server.log"), "-o",
                          f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start",
                          timeout=180)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        for sql in (f"CREATE ROLE mlflow LOGIN PASSWORD '{SECRET}'",
                    "CREATE DATABASE mlflow OWNER mlflow"):
            done = as_postgres(str(bin_dir / "psql"), "-h", str(base), "-p", str(port), "-U",
                               "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql)
            assert done.returncode == 0, done.stdout + done.stderr
        yield SimpleNamespace(
            uri=f"postgresql+psycopg2://127.0.0.1:{port}/mlflow?user=mlflow&password={SECRET}",
            masked=f"postgresql+psycopg2://127.0.0.1:{port}/mlflow?user=mlflow&password=***")
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def holding_the_secret(root: Path, but: tuple[Path, ...]) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and path not in but
            and SECRET.encode() in path.read_bytes()]


def test_a_secret_in_the_tracking_uri_works_end_to_end_and_no_file_keeps_it(
        postgres, tmp_path, digits_spec, write_spec, cli, reaper, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = digits_spec(budget={"trials": 4, "max_epochs": 3}, scheduler={"type": "fifo"},
                       data=SMALL_DATA, tracking={"mlflow_uri": postgres.uri})
    path = write_spec(spec)
    experiment = tmp_path / "runs" / NAME

    # Interrupted after a trial finished, then resumed: the restored tuner's MLflow mirror
    # writes again, so it got the URI back although its pickle holds none.
    driver = start_launch(path, tmp_path)
    try:
        wait_for(lambda: any(len(results(d)) == 3 for d in trial_dirs(experiment)), 240,
                 "a finished trial", proc=driver)
        with held(driver):  # still running when Ctrl+C comes, however fast its trials
            os.killpg(driver.pid, signal.SIGINT)
            time.sleep(1)
        assert driver.wait(timeout=180) == 130
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert (experiment / "ray" / "tuner.pkl").is_file()
    assert not holding_the_secret(experiment, ())  # the record, spec.json, tuner.pkl, ...
    again = cli("launch", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(resumed)" in again.stdout and SECRET not in again.stdout + again.stderr
    client, parents, children = runs_of(postgres.uri)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert all(steps(client, child) == [1, 2, 3] for child in children)

    # By directory: read without the secret; what needs MLflow says where to give it.
    status = cli("status", str(experiment), cwd=tmp_path)
    assert status.returncode == 0 and postgres.masked in status.stdout, status.stderr
    unpublished = cli("report", str(experiment), "-o", "report-1", cwd=tmp_path)
    assert unpublished.returncode == 0, unpublished.stdout + unpublished.stderr
    assert "MLFLOW_TRACKING_URI" in unpublished.stderr  # the warning: how to give the secret
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres.uri)
    published = cli("report", str(experiment), "-o", "report-2", cwd=tmp_path)
    assert published.returncode == 0, published.stdout + published.stderr
    assert f"MLflow: parent run {parents[0].info.run_id}" in published.stdout
    assert "report" in {a.path for a in client.list_artifacts(parents[0].info.run_id)}

    # The export travels without the secret; its retrain gets it from the environment.
    exported = cli("export-best", str(experiment), "-o", "best.yaml", cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert f"mlflow_uri: {postgres.masked}" in (tmp_path / "best.yaml").read_text()
    retrained = cli("retrain", "best.yaml", "--epochs", "1", "-o", "model", cwd=tmp_path)
    assert retrained.returncode == 0, retrained.stdout + retrained.stderr
    client, _, _ = runs_of(postgres.uri)
    found = client.search_runs([parents[0].info.experiment_id],
                               filter_string="tags.`retrain_of.trial_id` != ''")
    assert len(found) == 1 and found[0].info.status == "FINISHED"

    # Nothing under the test's directory but the user's own spec file holds it: the record,
    # Ray's state, launch.log, the reports, the export, the model card, MLflow's artifacts
    # and the launch's terminal output (driver.log).
    assert not holding_the_secret(tmp_path, but=(path,))
