"""Every trial's learning curve (the objective per epoch), with the scheduler's rungs (the epochs
where it compares trials, per bracket) and the point where each trial that did not run its
budget ended: the plot that shows what early stopping did, which Optuna has no plot for.
Interactive with plotly, static with matplotlib."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from search.engine.study import UNFINISHED
from search.experiment.results import Results
from search.spec.schedulers import section
from search.spec.outcome import Outcome

RUNNING = "running"  # a trial the launch left unfinished (a resume continues it)
# One colour per kind of end: the curves of a search read as "who got how far, and why".
COLORS = {Outcome.COMPLETED.value: "#1f77b4", Outcome.STOPPED.value: "#7f7f7f",
          Outcome.KILLED.value: "#9467bd", Outcome.DIVERGED.value: "#d62728",
          Outcome.OOM.value: "#ff7f0e", Outcome.INVALID.value: "#8c564b",
          Outcome.FAILED.value: "#e377c2", RUNNING: "#2ca02c"}
# How each early end is marked (plotly symbol, matplotlib marker).
END_MARKS = {Outcome.STOPPED.value: ("x", "x"), Outcome.KILLED.value: ("square", "s"),
             Outcome.DIVERGED.value: ("triangle-up", "^"), Outcome.OOM.value: ("diamond", "D"),
             Outcome.INVALID.value: ("cross", "P"), Outcome.FAILED.value: ("star", "*")}
ENDED_BY = {Outcome.STOPPED.value: "stopped by {label}"}


@dataclass(frozen=True)
class Rungs:
    """Where the search's scheduler compared trials: per bracket, the epochs below the budget;
    and the scheduler, as people call it."""

    label: str
    brackets: tuple[tuple[int, ...], ...] = ()

    @property
    def epochs(self) -> list[int]:
        return sorted({epoch for bracket in self.brackets for epoch in bracket})

    def brackets_at(self, epoch: int) -> list[int]:
        """The brackets (numbered from 1) with a rung at `epoch`."""
        return [i for i, bracket in enumerate(self.brackets, 1) if epoch in bracket]

    def annotation(self, epoch: int) -> str:
        """A rung's caption, naming the brackets that compare there when there are several."""
        if len(self.brackets) < 2:
            return f"rung {epoch}"
        return f"rung {epoch} (bracket {', '.join(map(str, self.brackets_at(epoch)))})"


def kind(trial: Any) -> str:
    """What a curve is labelled by: the trial's outcome, or `running` while it is unfinished."""
    return RUNNING if trial.status in UNFINISHED else trial.outcome.value


def rungs(spec: Mapping[str, Any], scheduler_state: Mapping[str, Any]) -> Rungs:
    """The rungs of the search's scheduler as the search ran: every bracket's rungs from the
    record's scheduler.json where its entry `records_rungs` (ASHA); else from the spec's
    scheduler entry (a scheduler without recorded state, or a search that ended before its
    first snapshot). A milestone is reached at the first whole epoch at or past it."""
    max_epochs = int(spec["budget"]["max_epochs"])
    entry = section(spec.get("scheduler"))
    label = entry.label if entry is not None else str(
        (spec.get("scheduler") or {}).get("type") or "the scheduler")
    kept = scheduler_state.get("rungs") if entry is not None and entry.records_rungs else None
    recorded = [tuple(sorted({epoch for m, _ in bracket
                              if (epoch := math.ceil(float(m))) < max_epochs}))
                for bracket in kept or []]
    if any(recorded):
        return Rungs(label, tuple(recorded))
    found = entry.rungs(max_epochs) if entry is not None else []
    return Rungs(label, tuple(tuple(bracket) for bracket in found))


def milestones(spec: Mapping[str, Any], scheduler_state: Mapping[str, Any]) -> list[int]:
    """The epochs at which the scheduler compared trials, in any bracket (see `rungs`)."""
    return rungs(spec, scheduler_state).epochs


def ended_early(results: Results, max_epochs: int) -> list[tuple[Any, tuple[int, float]]]:
    """(trial, its last point) of each trial with a curve that ended before the budget."""
    return [(t, t.curve()[-1]) for t in results.trials
            if t.curve() and kind(t) in END_MARKS and t.epochs < max_epochs]


def title(results: Results, rungs: Rungs) -> str:
    epochs = rungs.epochs
    where = (f"{rungs.label}'s rungs at epoch{'s' if len(epochs) > 1 else ''} "
             f"{', '.join(map(str, epochs))}" if epochs else "no early stopping")
    if epochs and len(rungs.brackets) > 1:
        where += " (by bracket: " + " | ".join(
            ", ".join(map(str, bracket)) or "none" for bracket in rungs.brackets) + ")"
    return f"Learning curves: {results.metric} per epoch of every trial; {where}"


WINNER_COLOR = "#000000"


def winner_label(results: Results) -> str:
    """How the plots name the winner (the leaderboard's first trial), or "none"."""
    best = results.best
    return f"trial {best.trial_id}" if best is not None else "none"


def _ends(results: Results) -> list[tuple[str, int, float]]:
    """(trial id, epoch, value) at the end of each curve: where its name is written."""
    return [(t.trial_id, *t.curve()[-1]) for t in results.trials if t.curve()]


def ended_by(outcome: str, rungs: Rungs) -> str:
    return ENDED_BY.get(outcome, outcome).format(label=rungs.label)


def figure(results: Results, rungs: Rungs, max_epochs: int) -> Any:
    """The interactive figure: one line per trial that reported an epoch (coloured by outcome,
    one legend entry per outcome), the winner's drawn again thick (its own legend entry), each
    trial's name at the end of its curve, a dashed line per rung (naming its brackets when
    there are several), a marker where a trial ended early."""
    import plotly.graph_objects as go

    fig = go.Figure()
    shown: set[str] = set()
    for trial in results.trials:
        curve, label = trial.curve(), kind(trial)
        if not curve:
            continue
        params = "<br>".join(f"{k}={v}" for k, v in trial.params.items())
        fig.add_trace(go.Scatter(
            x=[e for e, _ in curve], y=[v for _, v in curve], mode="lines+markers",
            name=label, legendgroup=label, showlegend=label not in shown,
            line={"color": COLORS[label]}, marker={"size": 4}, meta=trial.trial_id,
            hovertemplate=(f"trial {trial.trial_id} ({label})<br>epoch %{{x}}: "
                           f"{results.metric} %{{y:.4f}}<br>{params}<extra></extra>")))
        shown.add(label)
    best = results.best
    if best is not None and best.curve():
        curve = best.curve()
        fig.add_trace(go.Scatter(
            x=[e for e, _ in curve], y=[v for _, v in curve], mode="lines",
            name=f"winner: {winner_label(results)}", line={"color": WINNER_COLOR, "width": 4},
            opacity=0.55, meta=f"winner:{best.trial_id}", hoverinfo="skip"))
    ends = _ends(results)
    fig.add_trace(go.Scatter(
        x=[e for _, e, _ in ends], y=[v for _, _, v in ends], mode="text",
        text=[trial_id for trial_id, _, _ in ends], textposition="middle right",
        textfont={"size": 9}, name="trial names", showlegend=False, hoverinfo="skip"))
    for outcome, points in _by_outcome(ended_early(results, max_epochs)).items():
        symbol, _ = END_MARKS[outcome]
        fig.add_trace(go.Scatter(
            x=[e for _, (e, _) in points], y=[v for _, (_, v) in points], mode="markers",
            name=f"ended: {ended_by(outcome, rungs)}",
            marker={"symbol": symbol, "size": 11, "color": COLORS[outcome],
                    "line": {"width": 1, "color": "black"}},
            text=[t.trial_id for t, _ in points],
            hovertemplate="trial %{text} ended at epoch %{x}<extra></extra>"))
    for rung in rungs.epochs:
        fig.add_vline(x=rung, line_dash="dash", line_color="#444", opacity=0.6,
                      annotation_text=rungs.annotation(rung), annotation_position="top")
    fig.update_layout(title=title(results, rungs), xaxis_title="epoch",
                      yaxis_title=results.metric, template="plotly_white",
                      xaxis={"range": [0.5, max_epochs + 0.5], "dtick": _tick(max_epochs)})
    return fig


def draw(results: Results, rungs: Rungs, max_epochs: int) -> Any:
    """The same plot with matplotlib (Agg), for the PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; before pyplot is first imported
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(10, 6))
    for trial in results.trials:
        curve = trial.curve()
        if curve:
            ax.plot([e for e, _ in curve], [v for _, v in curve], "-o", markersize=2.5,
                    linewidth=1.2, alpha=0.8, color=COLORS[kind(trial)])
    kinds = dict.fromkeys(kind(t) for t in results.trials if t.curve())
    handles = [Line2D([], [], color=COLORS[k], label=k) for k in kinds]
    best = results.best
    if best is not None and best.curve():
        curve = best.curve()
        ax.plot([e for e, _ in curve], [v for _, v in curve], "-", linewidth=4, alpha=0.45,
                color=WINNER_COLOR, zorder=1)
        handles.append(Line2D([], [], color=WINNER_COLOR, linewidth=4, alpha=0.45,
                              label=f"winner: {winner_label(results)}"))
    for trial_id, epoch, value in _ends(results):
        ax.annotate(trial_id, (epoch, value), xytext=(4, 0), textcoords="offset points",
                    fontsize=7, va="center")
    for outcome, points in _by_outcome(ended_early(results, max_epochs)).items():
        _, marker = END_MARKS[outcome]
        label = f"ended: {ended_by(outcome, rungs)}"
        edge = None if marker == "x" else "black"  # an "x" has no face to outline
        ax.scatter([e for _, (e, _) in points], [v for _, (_, v) in points], marker=marker,
                   s=60, color=COLORS[outcome], edgecolors=edge, linewidths=0.8, zorder=3,
                   label=label)
        handles.append(Line2D([], [], linestyle="none", marker=marker, color=COLORS[outcome],
                              markeredgecolor=edge or COLORS[outcome], label=label))
    for rung in rungs.epochs:
        ax.axvline(rung, linestyle="--", color="#444", alpha=0.6, linewidth=1)
        ax.annotate(rungs.annotation(rung), (rung, 1.0), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="epoch", ylabel=results.metric, xlim=(0.5, max_epochs + 0.5))
    ax.set_title(title(results, rungs), fontsize=10, pad=14)
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(handles=handles, fontsize=8)
    return fig


def _by_outcome(points: list) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for trial, point in points:
        grouped.setdefault(kind(trial), []).append((trial, point))
    return grouped


def _tick(max_epochs: int) -> Optional[int]:
    """Whole epochs on the axis; plotly picks the spacing beyond 20."""
    return 1 if max_epochs <= 20 else None
