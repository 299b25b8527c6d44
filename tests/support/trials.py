"""Stand-ins for Ray's trials and builders of trial records, for every test package (as Optuna's
`optuna/testing/trials.py`): Ray builds real `Trial`s only inside a running Tuner (the e2e tests
drive those), and a record read from disk needs a search to have run.

- `FakeTrial`: what our callbacks (ledger, mirror, progress, fail-fast) and Ray's schedulers read
  of a Ray trial.
- `epoch`: one per-epoch result as a trial reports it.
- `trial_record`: a `TrialRecord` as `read_results` returns it, without a record on disk.
- `Planned`, `write_search`, `record`: a search's record on disk, written by the one writer of
  records for tests (tests/support/warm_records.py, re-exported here)."""

from __future__ import annotations

import math
from typing import Optional, Sequence

from search.experiment.results import TrialRecord
from search.spec.outcome import Outcome
from warm_records import Planned, record, write_search

__all__ = ["FakeTrial", "Planned", "epoch", "record", "trial_record", "write_search"]


class FakeTrial:
    """What the launch's callbacks and Ray's schedulers read of a Ray Trial: its id, config,
    status, last result, restarts, error file and folder; `epoch`, the epochs a driven
    scheduler test has run it for. Hashable by identity, as Ray's schedulers key on trials."""

    def __init__(self, trial_id: str, config: Optional[dict] = None, *, status: str = "RUNNING",
                 last_result: Optional[dict] = None, num_failures: int = 0,
                 error_file: Optional[str] = None, path: Optional[str] = None,
                 metric_analysis: Optional[dict] = None) -> None:
        self.trial_id, self.config = trial_id, {} if config is None else config
        self.status, self.last_result = status, {} if last_result is None else last_result
        self.num_failures, self.pickled_error_file, self.path = num_failures, error_file, path
        self.metric_analysis = {} if metric_analysis is None else metric_analysis
        self.is_saving, self.epoch = False, 0

    def set_status(self, status: str) -> None:  # as Tune's controller sets it
        self.status = status

    def __str__(self) -> str:
        return f"run_trial_{self.trial_id}"


def epoch(n: int, **values: float) -> dict:
    """One per-epoch result as a trial reports it (Ray adds the timestamp)."""
    return {"epoch": n, "training_iteration": n, "timestamp": 1_700_000_000 + n,
            "val_acc": 0.5 + n / 100, "train_loss": 2.0 / n, "lr": 0.1, **values}


def trial_record(trial_id: str, values: Sequence[float] = (), outcome: Outcome = Outcome.COMPLETED,
                 *, params: Optional[dict] = None, status: str = "TERMINATED",
                 error: Optional[str] = None, start: Optional[float] = None,
                 last: Optional[dict] = None, results: Optional[list[dict]] = None
                 ) -> TrialRecord:
    """A recorded trial whose objective `val_acc` (max) took `values` per epoch; its best is the
    highest finite one. `start`: Ray's timestamps and epoch times too (10 s an epoch from then);
    `last`: merged into the last report; `results`: the reports as given instead."""
    if results is None:
        results = [{"epoch": e, "val_acc": v} for e, v in enumerate(values, 1)]
        if start is not None:
            for report in results:
                report.update(timestamp=start + 10 * report["epoch"], time_this_iter_s=10.0)
    if results and last:
        results[-1].update(last)
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return TrialRecord(trial_id=trial_id, params={} if params is None else params, config={},
                       results=results, status=status, error=error, checkpoint=None,
                       outcome=outcome, best=max(finite) if finite else None,
                       epochs=results[-1]["epoch"] if results else 0, metric="val_acc")
