"""`export-best` and `retrain`: the winner of a search as a spec of its own, and that spec
trained once more on train+validation and tested once, with its weights and a model card.

Engines (torch, MLflow) are imported inside the commands: `--help` stays instant.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Optional

import typer

from search.cli.console import EXIT_BAD_CONFIG, bad_config, err, fail, load, out
from search.cli.arguments import ExperimentArg, ForceOpt, experiment_of, from_record


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False)


def _note(text: str) -> None:
    err.print(text, highlight=False, markup=False)


def export_best(target: str = ExperimentArg,
                output: Optional[Path] = typer.Option(
                    None, "--output", "-o", show_default=False,
                    help="The spec file to write (default: ./<experiment>-best.yaml)."),
                force: bool = ForceOpt,
                pick: Optional[str] = typer.Option(
                    None, "--pick", show_default=False, metavar="RULE",
                    help='Which trial wins: "max|min METRIC [where METRIC OP NUMBER [and ...]]", '
                         'e.g. "max val_acc where params < 1e6"; with several objectives among '
                         'the Pareto front (default: its knee).')) -> None:
    """Write the winner of a search as a one-trial spec: its full resolved config, the search's data, objective and tracking, with its checkpoint and provenance in the file's comment header.

    `resnet-search validate` accepts the file; `resnet-search retrain` trains it again. Exit 1 when the experiment has no winner or the file exists (without --force); exit 2 for a --pick that does not parse."""
    from datetime import datetime, timezone
    from importlib.metadata import version

    from search.engine.pareto import on_front
    from search.winner import pick as picking
    from search.winner.export import ExportRefused, export_experiment

    try:
        rule = picking.parse(pick) if pick is not None else None
    except ValueError as error:
        fail("bad --pick", str(error), EXIT_BAD_CONFIG)
    experiment = experiment_of(target)
    path = output if output is not None else Path(f"{experiment.name}-best.yaml")
    if path.is_dir():
        fail("cannot write", f"{path} is a directory; give -o a file name", EXIT_BAD_CONFIG)
    if path.exists() and not force:
        fail("not overwritten", f"{path} already exists; give another -o or --force to "
                                "replace it")
    try:
        exported = from_record(lambda: export_experiment(
            experiment, when=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            version=version("resnet-search"), file_name=str(path), front=on_front,
            rule=rule))
    except ExportRefused as error:
        fail("nothing to export", str(error))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(exported.text)
    except OSError as error:
        fail("cannot write", f"{path}: {error.strerror or error}")
    source = exported.provenance
    objective = source["objective"]
    scored = (", ".join(f"{m} {v:.4g}" for m, v in source["objectives"].items() if v is not None)
              if source.get("objectives") else f"{objective['metric']} {objective['value']:.4f}")
    picked = f"; picked by {source['picked_by']}" if source.get("picked_by") else ""
    _say(f"wrote {path}: the winner of '{source['experiment']}', trial {source['trial_id']} "
         f"({scored} after {source['epochs']} epochs{picked})")
    _say(f"  checkpoint  {source['checkpoint'] or '-'}")
    _say(f"  parent run  {source['mlflow']['parent_run_id'] or '-'} (MLflow experiment "
         f"'{source['mlflow']['experiment']}')")
    if source["status"] != "finished":
        _note(f"note: the search is {source['status']}: this is its best trial so far")
    _say(f"retrain it on train+validation and test it once:  resnet-search retrain {path}")


def retrain(spec_path: Path = typer.Argument(..., help="A one-trial spec, as `export-best` "
                                             "writes it.", show_default=False),
            epochs: Optional[int] = typer.Option(
                None, "--epochs", help="Train this many epochs instead of budget.max_epochs.",
                show_default=False),
            output: Optional[Path] = typer.Option(
                None, "--output", "-o", show_default=False,
                help="Where the weights and model card go (default: ./<name>-retrained/)."),
            force: bool = ForceOpt) -> None:
    """Train the spec's config on train+validation for its full budget, then evaluate it once on the test split.

    In this process, no Ray. Logs an MLflow run in the search's MLflow experiment, tagged with the search's parent run and the winning trial's run, and writes DIR/model.pt (a state_dict: torch.load(..., weights_only=True)) with DIR/model_card.md and model_card.json. Exit 1 when it cannot be done (data, MLflow store, an earlier retrain in DIR without --force), 130 on Ctrl+C, 143 on SIGTERM, 129 when its terminal closes (nothing written)."""
    from search.spec.problems import SpecError
    from search.winner.header import read_provenance
    from search.winner.retrain import existing, plan_of, verified

    spec = load(spec_path, None, epochs, None, epochs_flag="--epochs")
    source, unverified = verified(read_provenance(spec_path.read_text(errors="replace")))
    try:
        plan = plan_of(spec, source)
    except SpecError as error:
        bad_config(error, "cannot retrain this spec")
    if unverified:
        _note(unverified)
    directory = output if output is not None else Path(f"{plan.name}-retrained")
    if directory.exists() and not directory.is_dir():
        fail("cannot write", f"{directory} is a file; give -o a directory", EXIT_BAD_CONFIG)
    found = existing(directory)
    if found and not force:
        fail("not overwritten", f"{directory} already holds a retrained model "
                                f"({', '.join(found)}); give another -o or --force to replace it")
    _probe(plan.tracking_uri)
    _trained(plan, directory)


def _probe(uri: str) -> None:
    from search.spec.redact import missing_secret
    from search.tracking.store import probe

    problem = missing_secret(uri) or probe(uri, note=_note)
    if problem:
        fail("MLflow store unavailable", f"{uri}: {problem}")


def _trained(plan: Any, directory: Path) -> None:
    from search.winner.mlflow_run import TrackingFailed
    from search.winner.retrain import RetrainFailed, retrain

    epochs = plan.config.epochs
    _note(f"retraining '{plan.name}' on train+validation for {epochs} epochs, then one test "
          f"(MLflow experiment '{plan.mlflow_experiment}')")

    def progress(m: dict) -> None:
        _note(f"epoch {m['epoch']}/{epochs}  train_loss {m['train_loss']:.4f}  "
              f"train_acc {m['train_acc']:.4f}  lr {m['lr']:.4g}  {m['epoch_seconds']:.1f} s")

    # Ctrl+C is a KeyboardInterrupt however this process was started (a shell without job
    # control starts background jobs with SIGINT ignored); so are SIGTERM and a closed
    # terminal's SIGHUP (after which nothing is written to the terminal that is gone).
    from search.run.interrupt import exit_code, on_signals

    on_signals()
    try:
        done = retrain(plan, directory, on_epoch=progress)
    except KeyboardInterrupt as error:
        _note(f"interrupted: nothing was saved in {directory}; the MLflow run is closed as "
              "KILLED")
        raise typer.Exit(exit_code(getattr(error, "signum", signal.SIGINT))) from None
    except (RetrainFailed, TrackingFailed) as error:
        fail("retrain failed", str(error))
    except OSError as error:
        fail("retrain failed", f"{type(error).__name__}: {error}")
    _report(done, plan)


def _report(done: Any, plan: Any) -> None:
    from search.winner.card import CARD_MD, MODEL_FILE

    metrics = done.metrics
    objective = ((plan.source or {}).get("objective") or {})
    versus = (f" (the search's {objective['metric']} of this config: {objective['value']:.4f})"
              if objective.get("value") is not None else "")
    _say(f"test_acc {metrics['test_acc']:.4f}  test_loss {metrics['test_loss']:.4f} on "
         f"{done.card['data']['test_examples']} test images{versus}; trained on "
         f"{done.card['data']['train_examples']} images in {metrics['train_seconds']:.0f} s")
    _say(f"  weights     {done.directory / MODEL_FILE}")
    _say(f"  model card  {done.directory / CARD_MD}")
    _say(f"  MLflow run  {done.run_id} in experiment '{plan.mlflow_experiment}'")
    if not done.tracked:
        # As in a search, MLflow is a record of the result, not the result: exit 0.
        _note("warning: MLflow did not take every write in time; the weights and the model "
              "card are complete")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command(name="export-best")(export_best)
    app.command()(retrain)
