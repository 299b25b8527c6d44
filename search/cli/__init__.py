"""`resnet-search`: validate a search space, launch it on Ray, compare the trials in MLflow.

One module per command group; each imports the engines inside its commands, so `--help` and
`validate` never load Ray, torch or MLflow.
"""

from __future__ import annotations

import typer

from search.cli import (lifecycle_commands, report_commands, results_commands, run_commands,
                        spec_commands, ui_commands, winner_commands)

app = typer.Typer(help=__doc__.split("\n\n")[0], no_args_is_help=True, add_completion=True,
                  pretty_exceptions_enable=False, rich_markup_mode="rich")
spec_commands.register(app)
run_commands.register(app)
lifecycle_commands.register(app)
results_commands.register(app)
report_commands.register(app)
winner_commands.register(app)
ui_commands.register(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"resnet-search {version('resnet-search')}")
        raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True,
        help="Print the version and exit.")) -> None:
    """resnet-search: validate a search space, launch it on Ray, compare the trials in MLflow."""


def main() -> None:
    from search.cli.exiting import program

    program(app)


if __name__ == "__main__":
    main()
