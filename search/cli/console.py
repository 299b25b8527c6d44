"""What every command shares: the two consoles, exit codes, and loading a spec file (the
arguments and what a TARGET names are in `arguments`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

# Wide enough for the trials table when the output is a file or a CI log.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)

EXIT_OK = 0
EXIT_FAILED = 1  # the search could not start, was refused, or was aborted
EXIT_BAD_CONFIG = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; a SIGTERM ends with 143, a SIGHUP with 129


def load(path: Path, trials: Optional[int], max_epochs: Optional[int], seed: Optional[int],
         name: Optional[str] = None, relative_to: Optional[Path] = None,
         epochs_flag: str = "--max-epochs", warm_from: Optional[list[str]] = None) -> Any:
    """The validated spec, or exit 2 with one line per problem (field, value, rule; the flag
    when one gave the value)."""
    from search.spec.model import load_spec
    from search.spec.problems import SpecError

    try:
        spec = load_spec(path, trials=trials, max_epochs=max_epochs, seed=seed,
                         relative_to=relative_to, flags={"max_epochs": epochs_flag},
                         warm_from=[from_here(source) for source in warm_from or []])
        return spec.renamed(name) if name is not None else spec
    except SpecError as error:
        bad_config(error, "invalid search space")


def from_here(source: str) -> str:
    """A `--warm-from` path as the shell meant it, relative to the current directory (the
    file's `warm_start.from` entries are relative to the file's); a URI or '' as given."""
    if not source.strip() or "://" in source:
        return source
    return str(Path(source).expanduser().absolute())


def bad_config(error: Exception, title: str) -> None:
    from search.spec.redact import redact

    problems = getattr(error, "problems", [])
    err.print(f"[bold red]{title}[/] ({len(problems)} problem"
              f"{'s' if len(problems) != 1 else ''}):", highlight=False)
    err.print(redact(str(error)), markup=False, highlight=False)
    raise typer.Exit(EXIT_BAD_CONFIG)


def fail(title: str, message: str, code: int = EXIT_FAILED) -> None:
    from search.spec.redact import redact

    err.print(f"[bold red]{title}[/]: ", end="", highlight=False)
    err.print(redact(message), markup=False, highlight=False)
    raise typer.Exit(code)
