"""The MLflow UI on a search: the address of its experiment's runs, and MLflow's own server for a
store that has none (a SQLite file, a directory).

Every address of MLflow's UI is built by links.mlflow_link (in model-training mode, not the
GenAI pages).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

import requests
from mlflow.tracking import MlflowClient

from search.tracking import view
from search.tracking.links import mlflow_link
from search.tracking.store import sqlite_file
from search.wait.rules import Look, Verdict
from search.wait.waiter import wait_until

HOST = "127.0.0.1"  # the UI of a local store is for this machine only
DEFAULT_PORT = 5000  # MLflow's own default


def is_server(uri: str) -> bool:
    """Whether the tracking URI is a server with a UI of its own (http or https)."""
    return urlsplit(uri).scheme in ("http", "https")


def server_address(uri: str) -> str:
    """The address a browser opens for a tracking server: without credentials (user:password@)
    or a query (?token=...), which must not end up in a browser's history or a terminal."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def runs_view_url(server: str, experiment_id: str, saved_view: Optional[str] = None) -> str:
    """The experiment's runs table, in the UI's model-training mode, in one of its saved views
    when given (pure)."""
    return mlflow_link(server_address(server), experiment_id, saved_view=saved_view)


def search_link(uri: str, parent_run_id: str, server: Optional[str] = None) -> str:
    """The runs of a search's experiment on `server` (the tracking server itself by default),
    in the search's saved view when the experiment has it (launches before it had none)."""
    client = MlflowClient(uri)
    experiment = client.get_experiment(client.get_run(parent_run_id).info.experiment_id)
    saved = view.VIEW_ID if view.TAG in experiment.tags else None
    return runs_view_url(server or uri, experiment.experiment_id, saved)


class UIError(Exception):
    """The UI cannot be served (busy port, a server that does not start); says why."""


def port_taken(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


# Runs a command that ends when the process that started it (pid argv[1]) does, however that
# one ends: a SIGKILLed `resnet-search ui` ran no clean-up, and its server (in a session of its
# own, for stop_server) stayed behind. Linux's parent-death signal, set in the child before it
# becomes the command (exec keeps it); a parent gone before that leaves nothing to wait for.
# MLflow's CLI forwards the SIGTERM to its server's workers. Elsewhere the command just runs.
WITH_PARENT = """
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):
        sys.exit(0)
os.execv(sys.argv[2], sys.argv[2:])
"""


def start_server(uri: str, port: int, host: str = HOST, log: Optional[Path] = None,
                 note: Callable[[str], None] = lambda text: None) -> subprocess.Popen:
    """`mlflow ui` for the store at `uri`, in its own process group (so that stop_server ends
    its workers too), run from the database's directory: artifacts of experiments created from
    the UI land next to it, not wherever the command ran. Returns once it answers. It ends when
    the thread that called this does (Linux's parent death is the thread's): call it from the
    one that lives as long as the server should, as the `ui` command's main thread."""
    if port_taken(port, host):
        raise UIError(f"port {port} on {host} is in use (another MLflow UI?); choose another "
                      "with --port")
    db = sqlite_file(uri)
    where = db.resolve().parent if db else Path.cwd()
    sink = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-c", WITH_PARENT, str(os.getpid()),
         sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
         "--port", str(port), "--workers", "1"],
        cwd=where, stdout=sink, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True)
    if log:
        sink.close()  # the server holds its own copy
    try:
        wait_ready(proc, f"http://{host}:{port}", log, note)
    except BaseException:  # it did not start, or Ctrl+C came first: nothing stays behind
        stop_server(proc)
        raise
    return proc


def wait_ready(proc: subprocess.Popen, address: str, log: Optional[Path],
               note: Callable[[str], None] = lambda text: None) -> None:
    """Return once the MLflow server `proc` answers on `address`; UIError if it exits first.
    No deadline while it lives: it is local work (importing MLflow, migrating an old store's
    schema) that a loaded machine only slows down; a line through `note` after 5 s and every
    30 s says what is awaited (Ctrl+C stops it)."""
    def look() -> Look:
        if proc.poll() is not None:
            return Look(ready=False, alive=False)
        try:
            return Look(ready=requests.get(f"{address}/health", timeout=5).ok,
                        detail="its process is starting")
        except requests.RequestException:
            return Look(ready=False, detail="its process is starting")

    waited = wait_until(look, f"mlflow ui to answer on {address}", note=note, first_s=5.0,
                        poll_s=0.3)
    if waited.verdict is Verdict.GONE:
        raise UIError(f"mlflow ui exited with {proc.returncode} before it answered"
                      f"{f'; its output is in {log}' if log else ''}")


def stop_server(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """The server and its workers (its own process group)."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue
