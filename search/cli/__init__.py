"""`resnet-search`: validate a search space, launch it on Ray, compare the trials in MLflow.

One module per command group; each imports the engines inside its commands, so `--help` and
`validate` never load Ray, torch or MLflow.
"""

from __future__ import annotations

import typer

from search.cli import run_commands, spec_commands

app = typer.Typer(help=__doc__.split("\n\n")[0], no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode="rich")
spec_commands.register(app)
run_commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
