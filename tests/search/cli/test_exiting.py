"""`answers_fast`: a command that has answered ends with os._exit only when nothing is left to
finish (Ray never imported, no thread Python would wait for); otherwise, and for an unexpected
error, the ordinary way with its atexit hooks."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, threading, time
import typer
from search.cli.exiting import answers_fast, program
atexit.register(lambda: print("teardown ran", flush=True))
app = typer.Typer(add_completion=False)
def go(case: str) -> None:
    print("answer", flush=False)  # flushed by the fast exit too
    if case == "thread":
        threading.Thread(target=time.sleep, args=(0.2,)).start()
    if case == "ray":
        import ray  # its exit hook (ray.shutdown) must run
    if case == "error":
        raise ValueError("unexpected")
    if case != "ok":
        raise typer.Exit(3)
app.command()(answers_fast(go))
program(app)
"""


@pytest.mark.parametrize("case,code,teardown", [
    ("ok", 0, False), ("refused", 3, False), ("thread", 3, True), ("ray", 3, True),
    ("error", 1, True)])
def test_a_command_ends_at_once_only_when_nothing_is_left(case, code, teardown):
    done = subprocess.run([sys.executable, "-c", SCRIPT, case], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == code, done.stderr
    assert done.stdout.startswith("answer\n")
    assert ("teardown ran" in done.stdout) is teardown
    assert ("ValueError: unexpected" in done.stderr) is (case == "error")


def test_a_command_invoked_in_process_returns_to_its_caller():
    # CliRunner (or a notebook) runs validate inside its own process, where nothing but the
    # program itself may end the process early.
    code = ("from typer.testing import CliRunner\n"
            "from search.cli import app\n"
            "done = CliRunner().invoke(app, ['validate', 'spaces/digits.yaml'])\n"
            "print('returned', done.exit_code)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "returned 0"
