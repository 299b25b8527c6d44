"""How a launch ended, as the CLI reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from search.experiment.lease import Holder
from search.experiment.location import Location
from search.experiment.results import Results
from search.experiment.state import Status


@dataclass
class Ending:
    """How a launch ended, with the experiment's results as the record reads them."""

    status: Status  # finished | interrupted | aborted
    location: Location
    results: Results
    parent_run_id: str
    resumed: bool = False
    already_finished: bool = False  # a relaunch of a finished experiment: nothing was run
    mirror_failures: int = 0  # MLflow writes that failed for good (after retries and back-fill)
    reason: Optional[str] = None  # why it was aborted or interrupted
    signal: Optional[int] = None  # the signal that interrupted it
    took_over: Optional[Holder] = None  # the crashed driver whose lease this launch took over
    full: Optional[str] = None  # the line of a search stopped because storage_path is full
