"""Shell completion is on (typer's): `--show-completion SHELL` prints the script to source, and
the program completes its own commands the way that script asks it to."""

from __future__ import annotations

from typer.testing import CliRunner

from search.cli import app


def test_the_completion_script_is_offered():
    shown = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="resnet-search")
    assert shown.exit_code == 0, shown.output
    assert "complete -o default -F _resnet_search_completion resnet-search" in shown.output
    helped = CliRunner().invoke(app, ["--help"], prog_name="resnet-search")
    assert "--install-completion" in helped.output


def test_the_program_completes_its_commands():
    # what the sourced script runs on <TAB> after `resnet-search va`
    done = CliRunner().invoke(app, [], prog_name="resnet-search",
                              env={"_RESNET_SEARCH_COMPLETE": "complete_bash",
                                   "COMP_WORDS": "resnet-search va", "COMP_CWORD": "1"})
    assert done.output.split() == ["validate"], done.output
