"""`ui`: the MLflow UI on an experiment's runs.

A tracking server already has a UI: the command prints the address of the experiment's runs.
A SQLite file (or a directory store) has none: the command runs MLflow's own (`mlflow ui`) on
127.0.0.1 for that store until Ctrl+C (or SIGTERM, or SIGHUP: its terminal closed), which
ends it normally (exit 0), as it ends `mlflow ui`: stopping a server is how it is meant to end.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from search.cli.arguments import ExperimentArg, experiment_of, from_record
from search.cli.console import EXIT_FAILED, err, fail, out

PortOpt = typer.Option(5000, "--port", min=1, max=65535,
                       help="Where the UI of a SQLite store listens (on 127.0.0.1).")

# Reading the experiment's id from the store: a dead server must not hang the command.
READ_S = 30.0


def ui(target: str = ExperimentArg, port: int = PortOpt) -> None:
    """Open the MLflow UI on an experiment's runs: print the link for a tracking server, or run MLflow's UI on 127.0.0.1 for a SQLite store until Ctrl+C."""
    from search.run.interrupt import on_signals
    from search.spec.redact import missing_secret, redact
    from search.tracking import store
    from search.tracking.ui import UIError, is_server, search_link, start_server, stop_server

    experiment = experiment_of(target)
    state = from_record(experiment.state)
    if state is None:
        fail("no experiment", f"{experiment.directory} holds no experiment record: launch "
                              f"{target} first")
    uri = experiment.location.tracking_uri  # a spec file's, or the record's with its secret
    if missing_secret(uri):
        fail("no secret for the tracking store", str(missing_secret(uri)))
    db = store.sqlite_file(uri)
    if db is not None and not db.is_file():
        fail("no MLflow store", f"{db} does not exist (the tracking store of "
                                f"{experiment.directory}); nothing was logged there")
    address = uri if is_server(uri) else f"http://127.0.0.1:{port}"
    found: list[str] = []
    failed = store.bounded(uri, READ_S, lambda: found.append(
        search_link(uri, state.parent_run_id, server=address)))
    if failed or not found:
        fail("cannot read the MLflow store", f"{redact(uri)}: {failed}")
    if is_server(uri):
        out.print(found[0], highlight=False, markup=False, soft_wrap=True)
        return

    err.print(f"starting MLflow's UI for {redact(uri)} ...", highlight=False, markup=False)
    # The server's own output, for when it does not start (or stops): not on this terminal.
    log = Path(tempfile.gettempdir()) / f"resnet-search-ui-{port}.log"
    # The server runs in a process group of its own (its workers with it): a SIGTERM to this
    # command, or a closed terminal's SIGHUP, stops it as Ctrl+C does, rather than leave it
    # behind. SIGINT too, explicitly: a command started in the background of a script (`ui &`)
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it (CI's own
    # background run left an MLflow UI serving after `kill -INT`).
    on_signals()
    try:
        server = start_server(uri, port, log=log, note=lambda text: err.print(
            text, highlight=False, markup=False))
    except UIError as error:
        fail("cannot start the MLflow UI", str(error))
    except KeyboardInterrupt:
        return  # stopped before it answered; start_server ended it
    out.print(found[0], highlight=False, markup=False, soft_wrap=True)
    err.print("Ctrl+C stops it.", highlight=False, markup=False)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        stop_server(server)
        return
    fail("the MLflow UI stopped", f"mlflow ui exited with {code}; its output is in {log}",
         EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(ui)
