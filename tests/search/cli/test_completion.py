"""Shell completion is on (typer's): `--show-completion SHELL` prints the script to source, and
the program completes its own commands the way that script asks it to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from search.cli import app


def test_the_completion_script_is_offered():
    # As a user asks for it at a bash prompt: typer finds the shell from the process's parents
    # (shellingham), so the command runs from bash, as it would be typed.
    program = Path(sys.executable).parent / "resnet-search"  # the installed command
    shown = subprocess.run(["bash", "-c", '"$0" --show-completion', str(program)],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "complete -o default -F _resnet_search_completion resnet-search" in shown.stdout
    helped = CliRunner().invoke(app, ["--help"], prog_name="resnet-search")
    assert "--install-completion" in helped.output


def test_the_program_completes_its_commands():
    # what the sourced script runs on <TAB> after `resnet-search va`
    done = CliRunner().invoke(app, [], prog_name="resnet-search",
                              env={"_RESNET_SEARCH_COMPLETE": "complete_bash",
                                   "COMP_WORDS": "resnet-search va", "COMP_CWORD": "1"})
    assert done.output.split() == ["validate"], done.output
