"""Commands about what a search found: `trials` (every trial, best first) and `compare` (two
searches side by side).

They read the experiment record (a spec file, an experiment directory or an S3 URI): no Ray is
started and nothing of the experiment is changed.
"""

from __future__ import annotations

import typer

from typing import Any

from rich.table import Table

from search.cli.console import out
from search.cli.arguments import ExperimentArg, JsonOpt, experiment_of, from_record, summary_of
from search.cli.lifecycle_commands import best_text, dump, duration


def trials(target: str = ExperimentArg, as_json: bool = JsonOpt) -> None:
    """Every trial of an experiment, best first: its outcome, epochs, best objective and sampled parameters (--json adds status, error, checkpoint and the per-epoch objective)."""
    from search.cli.report import trials_json, trials_table

    experiment = experiment_of(target)
    results = from_record(experiment.recorded_results)
    if as_json:
        dump({"experiment": experiment.name, "directory": str(experiment.directory),
              "metric": results.metric, "mode": results.mode,
              **({"objectives": [{"metric": m, "mode": mode} for m, mode in results.objectives]}
                 if results.objectives else {}),
              "trials": trials_json(results)})
        return
    out.print(trials_table(results, f"trials of '{experiment.name}' ({len(results.trials)}, "
                                    f"best {results.metric} first)"))


def compare(first: str = typer.Argument(..., metavar="EXP_A", show_default=False,
                                        help="A spec file, an experiment directory or its URI."),
            second: str = typer.Argument(..., metavar="EXP_B", show_default=False,
                                         help="Another, compared with the first."),
            as_json: bool = JsonOpt) -> None:
    """Two searches side by side: each one's best, trials and trial-epochs spent, and the fields in which their winners' configs differ.

    Read from the records (no Ray)."""
    from search.experiment.compare import config_diff

    sides = [_side(target) for target in (first, second)]
    winners = [side["winner"] for side in sides]
    diff = config_diff(*[w.config if w is not None else None for w in winners])
    summaries = [side["summary"] for side in sides]
    if as_json:
        dump({"experiments": [s.as_json() for s in summaries],
              "winners": [None if w is None else {"trial_id": w.trial_id, "config": w.config}
                          for w in winners],
              "config_diff": diff})
        return
    a, b = summaries
    names = [a.name, b.name] if a.name != b.name else [f"A: {a.name}", f"B: {b.name}"]
    table = Table(title=f"'{a.name}' and '{b.name}'", title_justify="left")
    for column in ("", *names):
        table.add_column(column)
    for label, show in (("status", lambda s: s.status),
                        ("best", best_text),
                        ("trials", _trials_text),
                        ("trial-epochs", lambda s: f"{s.epochs_used} of {s.epochs_budget}"),
                        ("elapsed", lambda s: duration(s.elapsed_s)),
                        ("directory", lambda s: s.directory)):
        table.add_row(label, *(show(s) for s in summaries))
    out.print(table)
    out.print(_verdict(a, b), highlight=False, markup=False)
    if None in winners:
        out.print("no winners' configs to compare: " + " and ".join(
            f"'{s.name}' has no trial with a finite {s.metric}" for s, w in zip(summaries, winners)
            if w is None), highlight=False, markup=False)
        return
    if not diff:
        out.print("the winners' configs are the same", highlight=False, markup=False)
        return
    fields = Table(title=f"the winners' configs differ in {len(diff)} field"
                         f"{'s' if len(diff) != 1 else ''}", title_justify="left")
    for column in ("field", *names):
        fields.add_column(column)
    for key, values in diff.items():
        fields.add_row(key, *(str(v) for v in values))
    out.print(fields)


def _side(target: str) -> dict[str, Any]:
    """One experiment as `status` and `export-best` read it: its summary and its winner."""
    experiment = experiment_of(target)
    summary = summary_of(experiment)
    results = from_record(experiment.recorded_results)
    winner = results.best
    return {"summary": summary, "winner": winner if winner is not None and winner.config
            else None}


def _trials_text(summary: Any) -> str:
    ended = sum(n for kind, n in summary.trials.items()
                if kind not in ("running", "pending", "to start"))
    counts = " · ".join(f"{n} {kind}" for kind, n in summary.trials.items() if n)
    return f"{ended} ended of {summary.trials_budget}" + (f" ({counts})" if counts else "")


def _verdict(a: Any, b: Any) -> str:
    """Which best is better, by how much; or why the two cannot be ranked."""
    from search.spec import objective

    if (a.metric, a.mode) != (b.metric, b.mode):
        return (f"not comparable: '{a.name}' optimises {a.mode} {a.metric}, '{b.name}' "
                f"{b.mode} {b.metric}")
    if not a.best or not b.best:
        return "not ranked: " + " and ".join(f"'{s.name}' has no best yet" for s in (a, b)
                                              if not s.best)
    gap = (a.best["value"] - b.best["value"]) * objective.sign(a.mode)
    if gap == 0:
        return f"the same best {a.metric}: {a.best['value']:.4f}"
    better, worse = (a, b) if gap > 0 else (b, a)
    return (f"better: '{better.name}', by {abs(gap):.4f} {a.metric} ({better.epochs_used} "
            f"trial-epochs against {worse.epochs_used})")


def register(app: typer.Typer) -> None:
    app.command()(trials)
    app.command()(compare)
