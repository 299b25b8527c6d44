"""`report`: the leaderboard and the plots of a search, as HTML and PNG, in a folder and on the
experiment's MLflow parent run. Read from the record (a spec file, an experiment directory or an
S3 URI): no Ray is started and nothing of Ray's state is changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from search.cli.console import EXIT_BAD_CONFIG, err, fail, out
from search.cli.arguments import ExperimentArg, experiment_of, from_record

REPORT_DIR = "report"  # under a local experiment's directory


def default_folder(experiment: Any) -> Path:
    """Where a report goes unless -o says: beside the record of a local experiment
    (`<storage_path>/NAME/report/`); `./NAME-report/` for one on an object store, whose files
    are read from here."""
    from search.experiment.storage import is_local

    if is_local(experiment.directory):
        return experiment.directory / REPORT_DIR
    return Path.cwd() / f"{experiment.name}-report"


def checked_folder(folder: Path) -> Path:
    """The output folder, created; exit 2 naming --output when it cannot be one."""
    if folder.exists() and not folder.is_dir():
        fail("bad --output", f"--output is {str(folder)!r}, which is a file; give a directory "
             "(created if missing)", EXIT_BAD_CONFIG)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail("bad --output", f"--output is {str(folder)!r}, which cannot be created: "
             f"{error.strerror or error}", EXIT_BAD_CONFIG)
    return folder


def report(target: str = ExperimentArg,
           output: Optional[Path] = typer.Option(
               None, "--output", "-o", help="Folder for the files (default: report/ in the "
               "experiment's directory; ./NAME-report for an s3:// experiment).",
               show_default=False),
           mlflow: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Log the folder to "
                                       "the experiment's MLflow parent run, under report/."),
           top: int = typer.Option(10, "--top", min=1, help="Trials in the printed table (the "
                                   "files hold all).")) -> None:
    """The leaderboard and the plots of a search: optimization history, parameter importances (fANOVA), parallel coordinates, slices of the top parameters, and every trial's learning curve with the scheduler's rungs, as interactive HTML and PNG, with an index.html.

    Written to a folder and logged to the experiment's MLflow parent run (a failure there is a warning; the files stay). A plot that cannot be drawn (too few trials with a value, one parameter) is skipped with a line saying why."""
    experiment = experiment_of(target)
    folder = checked_folder((output or default_folder(experiment)).absolute())
    from search.cli.report import trials_table
    from search.report.build import best_line, make

    try:
        made = from_record(lambda: make(experiment, folder))
    except OSError as error:
        fail("cannot write the report", f"{folder}: {error}")
    results = made.results
    out.print(trials_table(results, f"leaderboard of '{experiment.name}' "
                                    f"({len(results.trials)} trials, best {results.metric} "
                                    "first)", top))
    for note in made.notes:
        err.print(f"not drawn: {note}", highlight=False, markup=False)
    out.print(best_line(results), highlight=False, markup=False)
    out.print(f"report: {folder / 'index.html'} ({len(made.files)} files in {folder})",
              highlight=False, markup=False)
    if mlflow:
        _publish(experiment, folder)
    _dashboard_hint(experiment)


def _publish(experiment: Any, folder: Path) -> None:
    from search.report.publish import ARTIFACT_PATH, log_to_parent
    from search.spec.redact import missing_secret, redact

    state = from_record(experiment.state)
    if state is None:  # recorded_results read it a moment ago: removed meanwhile
        err.print("warning: no experiment record to find the MLflow parent run in; the report "
                  f"stays in {folder}", highlight=False, markup=False)
        return
    uri = experiment.location.tracking_uri  # a spec file's, or the record's with its secret
    where = f"parent run {state.parent_run_id} in {redact(uri)}"
    failed = missing_secret(uri) or log_to_parent(uri, state.parent_run_id, folder)
    if failed:
        err.print(f"warning: could not log the report to MLflow ({where}): {redact(failed)}; "
                  f"the files stay in {folder}", highlight=False, markup=False)
    else:
        out.print(f"MLflow: {where}, artifacts {ARTIFACT_PATH}/", highlight=False,
                  markup=False)


def _dashboard_hint(experiment: Any) -> None:
    from search.engine.study import STUDY_FILE, study_url
    from search.experiment.storage import is_local

    if is_local(experiment.directory) and (experiment.directory / STUDY_FILE).is_file():
        out.print(f"the study (as of the last launch's end): optuna-dashboard "
                  f"{study_url(experiment.directory)}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(report)
