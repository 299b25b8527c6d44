"""A report of one experiment, written to a folder: the leaderboard (CSV), Optuna's plots and the
learning curves, each as interactive HTML and as PNG, and an index.html that shows them all.

Everything is read from the experiment record, never from Ray: the study is rebuilt from it the
way the driver persists it (`search.engine.study.build`), so a report of a running or
interrupted search is as current as its record.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import optuna

from search.engine import pareto, study as studies
from search.experiment.record import SPEC_FILE, Experiment
from search.experiment.state import damaged
from search.experiment.results import Results
from search.report import basis as basis_
from search.report import curves, hypervolume, optuna_plots
from search.report.leaderboard import LEADERBOARD_FILE, rows, write_csv
from search.report.page import INDEX_FILE, Figure, render

CURVES = "learning_curves"
PARETO = "pareto_front"
HYPERVOLUME = "hypervolume"
# plotly.js, once, beside the interactive pages that load it (`include_plotlyjs="directory"`):
# inlined, it made each page 4.7 MB and a report of five plots 24 MB.
PLOTLY_JS = "plotly.min.js"
# Every file a report writes: a new report of the same folder first removes these (and only
# these), so that a plot that can no longer be drawn does not linger from an earlier one.
OUTPUTS = ([LEADERBOARD_FILE, INDEX_FILE, PLOTLY_JS]
           + [f"{name}.{ext}" for name in [p.name for p in optuna_plots.PLOTS] + [CURVES, PARETO, HYPERVOLUME]
              for ext in ("html", "png")])


def outputs(objectives: tuple = ()) -> list[str]:
    """OUTPUTS, and with several objectives Optuna's plots of each objective after the first
    (`<plot>_<metric>`)."""
    return OUTPUTS + [f"{plot.name}{suffix(metric)}.{ext}" for metric, _ in objectives[1:]
                      for plot in optuna_plots.PLOTS for ext in ("html", "png")]


def suffix(metric: str) -> str:
    """What the files of a plot of a further objective end in (the primary's have none)."""
    return f"_{metric}"


@dataclass
class Report:
    folder: Path
    results: Results
    study: optuna.Study
    files: list[Path] = field(default_factory=list)  # written, the index last
    notes: list[str] = field(default_factory=list)  # one line per plot not drawn, saying why
    importances: Optional[dict[str, float]] = None
    figures: dict[str, Any] = field(default_factory=dict)  # name -> the plotly figure written
    basis: Optional[basis_.Basis] = None  # what Optuna's plots rest on (None: no value yet)
    plotted: Optional[optuna.Study] = None  # the study they draw: every trial at that epoch


def make(experiment: Experiment, folder: Path) -> Report:
    """Write the report of `experiment` into `folder` (created if need be)."""
    results = experiment.recorded_results()
    spec = experiment.saved_spec() or {}
    try:
        # Optuna's plots of one objective, the primary one (with several: its plots; the
        # Pareto front is drawn from the study of all of them)
        study = studies.build(replace(results, objectives=()), spec)
        several = studies.build(results, spec) if results.objectives else None
    except studies.DamagedSpace as error:  # a spec.json edited by hand
        raise damaged(experiment.directory / SPEC_FILE, str(error)) from None
    report = Report(folder, results, study)
    folder.mkdir(parents=True, exist_ok=True)
    for name in outputs(results.objectives):
        (folder / name).unlink(missing_ok=True)
    report.files.append(write_csv(results, folder / LEADERBOARD_FILE))
    rungs, max_epochs = curves.rungs(spec, experiment.scheduler_state()), int(
        spec["budget"]["max_epochs"])
    report.basis = basis_.choose(study, rungs.epochs, max_epochs, len(spec.get("space") or {}))
    report.plotted = (basis_.at(study, report.basis.epoch) if report.basis
                      else basis_.at(study, 0))
    found = optuna_plots.facts(report.plotted, trials=len(study.trials))
    figures = (_pareto_front(report, several) + _hypervolume(report)
               if several is not None else []) + \
        _optuna_figures(report, report.plotted, found, report.basis, results.metric) + \
        _learning_curves(report, rungs, max_epochs) + \
        [figure for metric, mode in results.objectives[1:]
         for figure in _objective_figures(report, spec, metric, mode, rungs, max_epochs)]
    index = folder / INDEX_FILE
    state = experiment.state()
    warm = (state.warm_start or {}).get("text") if state is not None else None
    lines = summary(experiment.name, results, report.basis) + (
        [f"warm-started (the searcher was told these before its first proposal; they are not "
         f"among the trials here): {warm}"] if warm else [])
    index.write_text(render(experiment.name, lines, figures, report.notes, rows(results),
                            LEADERBOARD_FILE))
    report.files.append(index)
    return report


def _objective_figures(report: Report, spec: dict, metric: str, mode: str,
                       rungs: curves.Rungs, max_epochs: int) -> list[Figure]:
    """Several objectives: Optuna's plots of a further objective, on the same rule as the
    primary's (each trial's value at a common epoch: basis.py)."""
    study = studies.build(report.results.as_objective(metric, mode), spec)
    basis = basis_.choose(study, rungs.epochs, max_epochs, len(spec.get("space") or {}))
    plotted = basis_.at(study, basis.epoch) if basis else basis_.at(study, 0)
    found = optuna_plots.facts(plotted, trials=len(study.trials))
    return _optuna_figures(report, plotted, found, basis, metric, suffix(metric))


def _optuna_figures(report: Report, study: optuna.Study, found: optuna_plots.Facts,
                    basis: Optional[basis_.Basis], metric: str, end: str = "") -> list[Figure]:
    """Optuna's plots of one objective that the study can have (`end`: what their files' names
    end in); a note for each of the others. The primary's importances are the report's."""
    importances = optuna_plots.importances(study, found)
    if not end:
        report.importances = importances
    top = optuna_plots.top_params(importances, found)
    caption = basis.caption(metric) if basis else None
    figures = []
    for plot in optuna_plots.PLOTS:
        why = optuna_plots.why_not(plot, found)
        if why is not None:
            report.notes.append(f"{plot.title}{f' of {metric}' if end else ''}: {why}")
            continue
        title = (f"{plot.title}: {found.completed} of {found.trials} trials, {metric} at "
                 f"epoch {basis.epoch}")
        if plot is optuna_plots.SLICE:
            title += f" ({', '.join(top)})"
        extra = optuna_plots.options(plot, metric, top)
        interactive = plot.interactive(study, **extra)
        interactive.update_layout(title=title)
        with warnings.catch_warnings():
            # Optuna's matplotlib plots are "experimental", and matplotlib warns of an axis
            # whose values are all the same (one choice among the completed trials): noise.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", module="matplotlib")
            warnings.filterwarnings("ignore", module="optuna.visualization.matplotlib")
            drawn = _figure_of(plot.static(study, **extra))
        inches = optuna_plots.width(plot, found, top)
        if inches is not None:
            drawn.set_size_inches(inches, drawn.get_size_inches()[1])
        figures.append(_save(report, plot.name + end, title, interactive, drawn, caption))
    return figures


def _pareto_front(report: Report, study: optuna.Study) -> list[Figure]:
    """Optuna's Pareto front plot of the study of every objective: the trials that ran the whole
    budget (COMPLETE), the front highlighted, the dominated ones shown too; a trial breaking a
    constraint drawn apart (Optuna reads the constraints the study keeps). Two or three
    objectives; more are not drawn (Optuna plots at most three)."""
    results = report.results
    names = [m for m, _ in results.objectives]
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done or len(names) > 3:
        why = ("no trial has run its whole budget yet" if not done
               else f"{len(names)} objectives (Optuna draws two or three)")
        report.notes.append(f"Pareto front: {why}")
        return []
    front = pareto.on_front(results)
    title = (f"Pareto front of {' and '.join(names)}: {len(front)} of {len(done)} trials of the "
             f"whole budget ({len(results.trials)} trials)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        interactive = optuna.visualization.plot_pareto_front(
            study, target_names=names, include_dominated_trials=True)
        interactive.update_layout(title=title)
        drawn = _figure_of(optuna.visualization.matplotlib.plot_pareto_front(
            study, target_names=names, include_dominated_trials=True))
    return [_save(report, PARETO, title, interactive, drawn,
                  f"On the front: {', '.join(front) or 'none'}. Trials the scheduler stopped "
                  "early are not drawn (their values are of fewer epochs); `resnet-search "
                  "trials` lists them.")]


def _hypervolume(report: Report) -> list[Figure]:
    """The hypervolume of the front found so far against the trial-epochs spent
    (search/report/hypervolume.py), as a step line: it rises when a trial adds to the front."""
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    found = hypervolume.history(report.results)
    if not found.epochs:
        report.notes.append("Hypervolume over trial-epochs: no trial has run its whole budget yet")
        return []
    names = [m for m, _ in report.results.all_objectives]
    title = (f"Hypervolume of the Pareto front over trial-epochs spent: "
             f"{found.volumes[-1]:.4g} after {found.epochs[-1]} trial-epochs")
    interactive = go.Figure(go.Scatter(x=found.epochs, y=found.volumes, mode="lines+markers",
                                       line_shape="hv", name="hypervolume"))
    interactive.update_layout(title=title, xaxis_title="trial-epochs spent",
                              yaxis_title="hypervolume")
    drawn, axis = plt.subplots(figsize=(7, 4))
    axis.step(found.epochs, found.volumes, where="post", marker="o")
    axis.set(title="Hypervolume of the Pareto front", xlabel="trial-epochs spent",
             ylabel="hypervolume")
    reference = ", ".join(f"{n} {v:.4g}" for n, v in zip(names, found.reference))
    return [_save(report, HYPERVOLUME, title, interactive, drawn,
                  f"Against the reference point ({reference}): each objective's worst value "
                  "among the trials of the whole budget, moved out by a tenth of its range. "
                  "A point is a trial that ran its whole budget, at the trial-epochs spent when "
                  "it ended; trials stopped early spend epochs and add no point.")]


def _learning_curves(report: Report, rungs: curves.Rungs, max_epochs: int) -> list[Figure]:
    results = report.results
    if not any(t.curve() for t in results.trials):
        report.notes.append(f"Learning curves: no trial of {len(results.trials)} has reported "
                            "an epoch yet")
        return []
    drawn = sum(1 for t in results.trials if t.curve())
    return [_save(report, CURVES, curves.title(results, rungs),
                  curves.figure(results, rungs, max_epochs),
                  curves.draw(results, rungs, max_epochs),
                  f"Rests on {drawn} of {len(results.trials)} trials: every trial that "
                  f"reported an epoch, its whole curve; the winner "
                  f"{curves.winner_label(results)} is drawn thick, each curve is named by its "
                  "trial at its end.")]


def summary(name: str, results: Results, basis: Optional[basis_.Basis]) -> list[str]:
    """The lines above the plots: the trials and how they ended, and the best one."""
    ended: dict[str, int] = {}
    for trial in results.trials:
        shown = trial.shown(results.live)
        ended[shown] = ended.get(shown, 0) + 1
    lines = [f"experiment '{name}': {len(results.trials)} trials ("
             + ", ".join(f"{n} {kind}" for kind, n in ended.items()) + f"), "
             f"{results.epochs_used} trial-epochs; objective {results.metric} ({results.mode})",
             (f"Optuna's plots show every trial at one epoch: {basis.caption(results.metric)} "
              if basis else "Optuna's plots: no trial has a value yet. ")
             + "The learning curves show every trial; the leaderboard ranks by each trial's "
             "best epoch"]
    return lines + [best_line(results)]


def best_line(results: Results) -> str:
    best = results.best  # a trial with a finite best, or None
    if best is None:
        return f"best: none yet (no trial has a finite {results.metric})"
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in best.params.items())
    return (f"best: trial {best.trial_id}, {results.metric} {best.best:.4f} "
            f"({best.outcome.value}, {best.epochs} epochs) {params}").rstrip()


def _figure_of(drawn: Any) -> Any:
    """The matplotlib Figure behind what Optuna returns: one Axes, or an array of them."""
    import numpy as np

    if hasattr(drawn, "figure"):  # one Axes
        return drawn.figure
    return np.asarray(drawn, dtype=object).flat[0].figure  # a grid of Axes (the slices)


def _save(report: Report, name: str, title: str, interactive: Any, drawn: Any,
          caption: Optional[str] = None) -> Figure:
    """Both versions of one plot into the report's folder."""
    import matplotlib.pyplot as plt

    page, png = report.folder / f"{name}.html", report.folder / f"{name}.png"
    # plotly.js once in the folder, loaded by each page from beside it: the folder opens
    # offline (the index embeds the PNGs, so it reads alone too).
    interactive.write_html(page, include_plotlyjs="directory", full_html=True)
    script = report.folder / PLOTLY_JS
    if script.exists() and script not in report.files:
        report.files.append(script)
    try:
        drawn.savefig(png, dpi=110, bbox_inches="tight")
    finally:
        plt.close(drawn)
    report.files += [page, png]
    report.figures[name] = interactive
    return Figure(title, page.name, png, caption)
