"""A command whose answer is given ends at once, without the interpreter's teardown.

A launch refused by its pre-flight has imported torch, torchvision, Optuna and maybe MLflow to
check the data and the space. Leaving through `sys.exit` then runs their exit hooks (torch's
operator-library finalizers) and frees every module: on a loaded machine that kept the process
alive for tens of seconds after it printed its refusal. When nothing is left to finish, the
process leaves with `os._exit` as soon as its output is flushed.

Only the program itself leaves this way (`program(app)`, what the `resnet-search` script runs):
the same commands invoked in-process (typer's CliRunner, a notebook) return as any function does,
so that ending early never takes a caller's process with it.

"Nothing is left to finish" is checked, not assumed: Ray was never imported (its exit hook stops
a local cluster; a launch imports it only when the pre-flight has passed), and no thread that
Python would wait for at exit is alive (a lease's heartbeat, MLflow's writer). Otherwise the
command ends the ordinary way.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from typing import Any, Callable

import typer


_PROGRAM = threading.Event()  # set while this process runs as the `resnet-search` program


def program(app: Callable[[], Any]) -> Any:
    """Run `app` as the process's program: its fast-answering commands may end the process."""
    _PROGRAM.set()
    return app()


def nothing_left_to_finish() -> bool:
    if not _PROGRAM.is_set():
        return False
    if "ray" in sys.modules:
        return False
    main = threading.main_thread()
    return not any(t is not main and t.is_alive() and not t.daemon
                   for t in threading.enumerate())


def leave(code: int) -> None:
    """End the process with `code` now, its output flushed."""
    logging.shutdown()  # flushes the handlers (what atexit would have done)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


def answers_fast(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command` (a typer command function), ending the process as soon as it has answered
    when nothing is left to finish; an unexpected error still ends the ordinary way (its
    traceback)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            command(*args, **kwargs)
            code = 0
        except typer.Exit as done:
            code = done.exit_code
            if not nothing_left_to_finish():
                raise
        if nothing_left_to_finish():
            leave(code)

    return run
