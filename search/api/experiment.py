"""An experiment opened from Python: what `status`, `trials` and `export-best` read, as objects.

Everything is read from the experiment's record, as the commands read it (no Ray, nothing
changed): `status()` is `resnet-search status`'s Summary, `trials()` the rows of
`resnet-search trials --json` as a DataFrame, `best()` the trial `export-best` exports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from search.experiment import record as records
from search.experiment.storage import as_path
from search.spec.model import load_spec

if TYPE_CHECKING:
    import pandas

    from search.experiment.location import Location
    from search.experiment.results import Results, TrialRecord
    from search.experiment.summary import Summary

Target = Union[str, PathLike]


@dataclass(frozen=True)
class Best:
    """The best trial so far (the winner once the search has finished)."""

    trial_id: str
    metric: str  # the objective
    value: float  # its best value over the trial's epochs
    epochs: int  # epochs the trial ran
    params: dict  # what the searcher sampled
    config: dict  # the full training config it ran with (defaults included)
    checkpoint: Optional[str]  # its newest checkpoint directory (a path or a URI)


class Experiment:
    """One experiment's record. Each call reads the record anew, so a running search shows its
    progress. Raises NoExperiment (search.experiment.record) when nothing was recorded yet and
    DamagedRecord (search.experiment.state) when the record cannot be read."""

    def __init__(self, record: records.Experiment):
        self.record = record

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def directory(self) -> str:
        return str(self.record.directory)

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, {self.directory!r})"

    def status(self) -> Summary:
        """How the search stands: its status, trial counts, best so far, budget used, elapsed
        time and ETA (`resnet-search status`; `.as_json()` for plain data)."""
        return self.record.summary()

    def results(self) -> Results:
        """The trials as the record reads them, best first (the objects behind `trials()`)."""
        return self.record.recorded_results()

    def trials(self) -> pandas.DataFrame:
        """One row per trial, best first: `trial_id`, `outcome` (completed, stopped, ...,
        `running`/`pending` as `status` counts them), `status` (Ray's), `epochs`, `best` (the
        best objective), `curve` (the objective of each epoch, epoch 1 first, NaN where it was
        not finite), `checkpoint`, `error`, and one `params.<name>` column per sampled
        parameter (MLflow's naming). `df.attrs` holds the objective's `metric` and `mode`."""
        import pandas

        results = self.results()
        rows = []
        for trial in results.trials:
            row = trial.as_json(results.live)
            rows.append({"trial_id": trial.trial_id, "outcome": row["outcome"],
                         "status": trial.status, "epochs": trial.epochs,
                         "best": _number(row["best"]), "curve": _curve(trial, results.metric),
                         "checkpoint": row["checkpoint"], "error": trial.error,
                         **{f"params.{k}": v for k, v in trial.params.items()}})
        columns = ["trial_id", "outcome", "status", "epochs", "best", "curve", "checkpoint",
                   "error"]
        frame = pandas.DataFrame(rows, columns=columns + sorted(
            {key for row in rows for key in row if key.startswith("params.")}))
        frame.attrs.update(metric=results.metric, mode=results.mode)
        return frame

    def curves(self) -> pandas.DataFrame:
        """Every epoch of every trial in long form: `trial_id`, `epoch` and each metric the
        trial reported (the objective among them), for plotting learning curves."""
        import pandas

        rows = [{"trial_id": trial.trial_id, **report}
                for trial in self.results().trials for report in trial.results]
        frame = pandas.DataFrame(rows)
        if "epoch" not in frame:
            frame = pandas.DataFrame(columns=["trial_id", "epoch"])
        return frame

    def best(self) -> Optional[Best]:
        """The trial with the best finite objective (what `export-best` exports), or None when
        no trial has one yet."""
        results = self.results()
        winner = results.best
        if winner is None:
            return None
        return Best(trial_id=winner.trial_id, metric=results.metric, value=float(winner.best),
                    epochs=winner.epochs, params=dict(winner.params),
                    config=dict(winner.config),
                    checkpoint=None if winner.checkpoint is None else str(winner.checkpoint))


class NoSuchTarget(FileNotFoundError):
    """A target that is neither a spec file nor an experiment directory (nor its URI)."""


def open_experiment(target: Target) -> Experiment:
    """The experiment a spec file, an experiment directory or its URI (s3://bucket/runs/NAME)
    names, as `resnet-search status TARGET` finds it. Raises SpecError for a spec file that is
    not valid, NoSuchTarget (a FileNotFoundError) for a path that is neither, NoExperiment for
    a directory without a record."""
    return Experiment(record_of(target))


def record_of(target: Target,
              where: Optional[Callable[[Path], Location]] = None) -> records.Experiment:
    """The record behind `open_experiment`, which the CLI's TARGET resolves through too:
    `where` turns a spec file into where its experiment lives (default: load and locate it,
    raising SpecError; the CLI's exits 2 naming the problem). An unsupported URI raises
    UnsupportedStorage (search.experiment.storage)."""
    path = as_path(str(target))
    if path.is_file():
        return records.Experiment((where or _where)(Path(str(target))))
    if path.is_dir():
        return records.Experiment.open(path)
    raise NoSuchTarget(f"{target} is neither a spec file nor an experiment directory")


def _where(spec_file: Path) -> Location:
    from search.run.launch import locate_spec

    return locate_spec(load_spec(spec_file))


def _number(value: Any) -> float:
    return float(value) if value is not None else math.nan


def _curve(trial: TrialRecord, metric: str) -> list[float]:
    values = []
    for report in trial.results:
        value = report.get(metric)
        finite = isinstance(value, (int, float)) and math.isfinite(value)
        values.append(float(value) if finite else math.nan)
    return values
