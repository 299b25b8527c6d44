"""Optuna's own plots of the search's study: optimization history, parameter importances
(fANOVA, seeded), parallel coordinates and slices of the most important parameters; each drawn
by `optuna.visualization` (plotly, interactive) and `optuna.visualization.matplotlib` (static).

Optuna plots COMPLETE trials only; the study drawn here is not the search's own but the one of
`basis.at`: every trial at a common epoch (under ASHA most trials were stopped early). The
learning curves (`curves`) show every trial's whole curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import matplotlib

matplotlib.use("Agg")  # PNGs on a machine with no display; before pyplot is first imported

import optuna  # noqa: E402
from optuna import visualization as interactive  # noqa: E402
from optuna.search_space import intersection_search_space  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from optuna.visualization import matplotlib as static  # noqa: E402

TOP_PARAMS = 4  # slices of this many parameters, the most important first
SEED = 0  # fANOVA's random forest: the same study gives the same importances


@dataclass(frozen=True)
class Facts:
    """What decides which of Optuna's plots can be drawn for a study."""
    trials: int  # every trial of the search
    completed: int  # COMPLETE with a finite value in the study drawn: what Optuna plots
    varying: tuple[str, ...]  # parameters every plotted trial sampled from >1 value (fANOVA's)
    sampled: tuple[str, ...]  # parameters any plotted trial sampled, in first-seen order


def facts(study: optuna.Study, trials: Optional[int] = None) -> Facts:
    """The facts of the study drawn; `trials`: the search's (default: the study's)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]
    common = intersection_search_space(done) if done else {}
    sampled = tuple(dict.fromkeys(name for t in done for name in t.params))
    return Facts(trials=len(study.trials) if trials is None else trials, completed=len(done),
                 varying=tuple(n for n in sampled if n in common and not common[n].single()),
                 sampled=sampled)


@dataclass(frozen=True)
class Plot:
    name: str  # the files' stem: NAME.html, NAME.png
    title: str
    interactive: Callable[..., Any]  # (study, **options) -> plotly Figure
    static: Callable[..., Any]  # (study, **options) -> matplotlib Axes (or an array of them)


HISTORY = Plot("optimization_history", "Optimization history",
               interactive.plot_optimization_history, static.plot_optimization_history)
IMPORTANCES = Plot("param_importances", "Parameter importances (fANOVA)",
                   interactive.plot_param_importances, static.plot_param_importances)
PARALLEL = Plot("parallel_coordinate", "Parallel coordinates",
                interactive.plot_parallel_coordinate, static.plot_parallel_coordinate)
SLICE = Plot("slice", "Slices of the most important parameters",
             interactive.plot_slice, static.plot_slice)
PLOTS = (HISTORY, IMPORTANCES, PARALLEL, SLICE)


def why_not(plot: Plot, found: Facts) -> Optional[str]:
    """Why `plot` cannot be drawn for a study with these facts (one line), or None."""
    if found.completed == 0:
        return (f"no trial of {found.trials} has reported a finite value of the objective yet "
                "(the learning curves show every trial)")
    if plot is IMPORTANCES:
        if found.completed < 2:
            return ("parameter importances need at least 2 trials with a value at the epoch "
                    "the plots read; this search has 1 (the learning curves show every trial)")
        if len(found.varying) < 2:
            only = (f"only {found.varying[0]} varies" if found.varying
                    else "no parameter varies")
            return (f"parameter importances need at least 2 searched parameters; {only} "
                    "across the trials plotted")
    elif plot is not HISTORY and not found.sampled:
        return "the trials sampled no parameter (the space is empty)"
    return None


def evaluator() -> optuna.importance.FanovaImportanceEvaluator:
    return optuna.importance.FanovaImportanceEvaluator(seed=SEED)


def importances(study: optuna.Study, found: Facts) -> Optional[dict[str, float]]:
    """fANOVA's importance of each varying parameter, most important first; None when the
    study cannot have them (see `why_not`)."""
    if why_not(IMPORTANCES, found) is not None:
        return None
    ranked = optuna.importance.get_param_importances(study, evaluator=evaluator())
    return {name: float(value) for name, value in ranked.items()}


def top_params(ranked: Optional[dict[str, float]], found: Facts, n: int = TOP_PARAMS
               ) -> list[str]:
    """The parameters to slice: the most important first, those of no importance left out
    (unless none has any); without importances, the sampled parameters in the order the
    trials show them."""
    if ranked:
        mattered = [name for name, value in ranked.items() if value > 0]
        return (mattered or list(ranked))[:n]
    return list(found.sampled)[:n]


def width(plot: Plot, found: Facts, top: list[str]) -> Optional[float]:
    """Inches for a static plot with one column per parameter (Optuna draws them at a fixed
    size, where log-scale tick labels run into each other); None: Optuna's size."""
    if plot is SLICE:
        return max(8.0, 4.0 * len(top))
    if plot is PARALLEL:
        return max(8.0, 1.6 * (1 + len(found.sampled)))
    return None


def options(plot: Plot, metric: str, top: list[str]) -> dict[str, Any]:
    """The arguments each plot takes beyond the study."""
    extra: dict[str, Any] = {"target_name": metric}
    if plot is IMPORTANCES:
        extra["evaluator"] = evaluator()  # a fresh one: each draw gives the same importances
    elif plot is SLICE:
        extra["params"] = top
    return extra
