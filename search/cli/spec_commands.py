"""Commands about a spec file alone: `validate`, `init` (a spec to start from) and `schema` (its
JSON Schema, for editors). No engine is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.table import Table

from search.cli.arguments import EpochsOpt, SeedOpt, SpecArg, TrialsOpt, WarmFromOpt, located
from search.cli.console import EXIT_BAD_CONFIG, bad_config, err, fail, load, out
from search.cli.exiting import answers_fast
from search.spec.problems import SpecError
from search.spec.redact import redact


def validate(spec_path: Path = SpecArg, trials: Optional[int] = TrialsOpt,
             max_epochs: Optional[int] = EpochsOpt, seed: Optional[int] = SeedOpt,
             warm_from: Optional[list[str]] = WarmFromOpt,
             preflight: bool = typer.Option(
                 False, "--preflight", help="Also run the checks launch makes before Ray starts: "
                 "storage_path writable, the data readable with two classes and a batch, every "
                 "sampled value accepted by the trainer, the GPUs a trial asks for present and "
                 "packed trials fitting in their memory, the MLflow store reachable."),
             show_spec: bool = typer.Option(
                 False, "--show-spec", help="Also print the spec resolved (every default "
                 "filled in), after the summary.")) -> None:
    """Check a search space and summarise what it explores: parameters, trials, budget, rungs (--show-spec adds the spec resolved).

    Exits 0 when valid and 2 with one line per problem (field, value, rule) when not; with --preflight, 1 when only the MLflow store cannot be reached."""
    from search.spec.params import describe

    spec = load(spec_path, trials, max_epochs, seed, warm_from=warm_from)
    table = Table(title=f"space of '{spec.name}'", title_justify="left")
    table.add_column("parameter")
    table.add_column("values")
    for name, param in spec.space.items():
        table.add_row(name, describe(param))
    for name, value in spec.fixed.items():
        table.add_row(name, f"fixed {value}")
    out.print(table)
    b = spec.budget
    out.print(f"{b.trials} trials x up to {b.max_epochs} epochs = at most "
              f"{b.trials * b.max_epochs} "
              f"trial-epochs; sampler {spec.sampler.type}, scheduler {spec.scheduler.type}"
              + rungs_text(spec.scheduler, b.max_epochs)
              + "; " + objectives_text(spec) + ".", highlight=False)
    if not _standing(spec):
        _warm_start(spec)
    if show_spec:  # the summary first: 140 lines of defaults would push it off the screen
        out.print(redact(yaml.safe_dump(spec.resolved(), sort_keys=False)), highlight=False,
                  markup=False)
    if preflight:
        _preflight(spec)
    out.print(f"[green]valid[/] (spec hash {spec.spec_hash()})"
              + (", pre-flight passed" if preflight else ""))


def rungs_text(scheduler: Any, max_epochs: int) -> str:
    """' (ASHA rungs at epochs [1, 3])': where the scheduler compares trials, one list per
    bracket; nothing for one that never does."""
    brackets = scheduler.rungs(max_epochs)
    if not any(brackets):
        return ""
    if len(brackets) == 1:
        return f" ({scheduler.label} rungs at epochs {brackets[0]})"
    return (f" ({scheduler.label} rungs at epochs {' | '.join(map(str, brackets))}, "
            "one list per bracket)")


def _warm_start(spec: Any) -> None:
    """What a new experiment's warm start would tell its searcher (the line launch prints), or
    exit 2 naming a `warm_start.from` entry that names no experiment."""
    from search.run.warm import knowledge_of

    try:
        known = knowledge_of(spec)
    except SpecError as error:
        bad_config(error, "invalid warm start")
    if known is not None:
        for text in known.lines():
            out.print(text, highlight=False, markup=False)


def _standing(spec: Any) -> bool:
    """What launching this spec would do with the experiment of its name, when there is one:
    extend it (the changes, and the budget then left), resume it, report it finished, or refuse
    it (the changed fields), and where a warm-started one's knowledge came from. Read from the
    record, never Ray; a record that cannot be read is launch's to name. Whether there is one."""
    from search.experiment import extend
    from search.experiment.decide import Action
    from search.experiment.record import Experiment
    from search.experiment.state import DamagedRecord
    from search.run.launch import job_of

    location = located(spec)
    try:
        record = Experiment(location)
        state = record.state()
        if state is None:
            return False
        decision = record.decide(spec.resolved(), spec.spec_hash())
        results = record.results(job_of(spec, location))
    except (DamagedRecord, OSError) as error:
        out.print(f"experiment '{spec.name}' exists but its record cannot be read: {error}",
                  highlight=False, markup=False)
        return True
    left = extend.budget_text(spec.resolved(), len(results.trials), results.epochs_used)
    said = {Action.EXTEND: "launching it extends the experiment",
            Action.RESUME: "launching it resumes the experiment",
            Action.FINISHED: "the experiment has finished; raise --trials or --max-epochs to "
                             "extend it",
            Action.REFUSE: "launching it is refused"}.get(decision.action, "launching it "
                                                                          "starts it anew")
    changes = "".join(f"\n  {change}" for change in decision.changes)
    out.print(f"experiment '{spec.name}' exists ({state.status.value}): {said}{changes}"
              + (f"\n  {left}" if decision.action is not Action.REFUSE else "")
              + (f"\n  it was warm-started: {state.warm_start.get('text', '')}"
                 if state.warm_start else ""),
              highlight=False, markup=False)
    return True


def _preflight(spec: Any) -> None:
    from search.run import preflight
    from search.run.errors import LaunchError
    from search.run.launch import job_of

    location = located(spec)
    try:
        problems = preflight.problems(spec, location, job_of(spec, location),
                                      say=lambda text: out.print(text, highlight=False,
                                                                 markup=False))
    except LaunchError as error:  # the GPU memory probe could not run
        fail("pre-flight failed", str(error))
    if problems:
        bad_config(SpecError(problems, source=preflight.SOURCE), "pre-flight failed")
    try:
        preflight.tracking(location.tracking_uri,
                           note=lambda text: err.print(text, highlight=False, markup=False))
    except LaunchError as error:
        fail("pre-flight failed", str(error))


def init(dataset: str = typer.Option(
               "digits", "--dataset", help="The data of the search: a name of the dataset "
               "registry (digits, cifar10, cifar100, imagefolder, synthetic).",
               show_default=True),
           output: Path = typer.Option(Path("search.yaml"), "--output", "-o",
                                       help="The spec file to write."),
           name: Optional[str] = typer.Option(None, "--name", show_default=False,
                                              help="The experiment's name (default: "
                                              "DATASET-search)."),
           force: bool = typer.Option(False, "--force", help="Replace the file if it exists.")
           ) -> None:
    """Write a spec to start from: a first search on a dataset, every field commented with what it means, its default and its choices.

    `resnet-search validate` accepts what it writes. Exit 1 when the file exists (without --force), 2 for a dataset the registry does not have."""
    from resnet_core.config import DataConfig
    from search.spec.problems import Problem
    from search.spec.schema import check_value
    from search.spec.json_schema import is_spec_schema, schema_text
    from search.spec.template import SCHEMA_FILE, template

    reason = check_value("dataset", dataset, DataConfig)  # the registry's names, as validate
    if reason:
        bad_config(SpecError([Problem("data.dataset", dataset, reason, flag="--dataset")],
                             source="init"), "cannot write a spec")
    if output.is_dir():
        fail("cannot write", f"{output} is a directory; give -o a file name", EXIT_BAD_CONFIG)
    if output.exists() and not force:
        fail("not overwritten", f"{output} already exists; give another -o or --force to "
                                "replace it")
    # The schema its first line points editors at, beside it: written when missing, refreshed
    # when it is an older resnet-search schema, left alone (and not pointed at) when it is
    # another tool's file of that name.
    schema_path = output.parent / SCHEMA_FILE
    ours = not schema_path.exists() or is_spec_schema(schema_path)
    text = template(dataset, name, file_name=str(output),
                    schema_file=SCHEMA_FILE if ours else None)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        if ours:
            schema_path.write_text(schema_text())
    except OSError as error:
        fail("cannot write", f"{error.filename or output}: {error.strerror or error}")
    editors = (f" ({schema_path} beside it: editors complete and check it)" if ours else
               f" ({schema_path} is not a resnet-search schema: left alone)")
    out.print(f"wrote {output}: a first search on {dataset}{editors}; check it with "
              f"`resnet-search validate {output}`", highlight=False, markup=False)


def schema(output: Optional[Path] = typer.Option(
        None, "--output", "-o", show_default=False,
        help="Write it to this file instead of printing it.")) -> None:
    """Print the spec's JSON Schema, for editors that complete and check a spec file as it is typed.

    A spec file whose first line is `# yaml-language-server: $schema=PATH` is checked against the schema at PATH (relative to the file) by editors with the YAML language server (VS Code's YAML extension, Neovim, Helix...). The shipped spaces/ point at spaces/spec.schema.json."""
    from search.spec.json_schema import schema_text

    text = schema_text()
    if output is None:
        out.file.write(text)
        return
    try:
        output.write_text(text)
    except OSError as error:
        fail("cannot write", f"{output}: {error.strerror or error}")
    err.print(f"wrote {output}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(answers_fast(validate))
    app.command()(init)
    app.command()(schema)


def objectives_text(spec: Any) -> str:
    """`objective max val_acc`, or with several `objectives max val_acc, min params (a Pareto
    front)`, and the constraints."""
    said = ", ".join(f"{o.mode} {o.metric}" for o in spec.objectives)
    text = (f"objectives {said} (a Pareto front)" if len(spec.objectives) > 1
            else f"objective {said}")
    bounds = [f"{m} {'<=' if side == 'max' else '>='} {bound:g}"
              for m, side, bound in (c.triple() for c in spec.constraints)]
    return text + (f"; constraints {', '.join(bounds)}" if bounds else "")
