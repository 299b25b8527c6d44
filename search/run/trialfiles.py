"""Ray's per-trial files (`ray/<trial>/result.json`, `progress.csv`) kept whole across a pause.

Ray's JSON and CSV loggers copy a trial's file from the storage over the driver's staged copy
every time the trial starts: also when a paused trial goes on, or a failed one is retried, in
the same driver. The storage's copy is only as new as Ray's last sync (with each experiment
snapshot), so a trial that promotion ASHA paused and promoted between a report and that sync
lost the reports in between from Ray's files for good (its `result.json` read `[2]` where epochs
1 and 2 were trained). The staged copy is the newest whenever it exists; the storage's is
fetched only when it does not, which is a resumed driver's fresh staging folder.

The record reads the driver's journal, not these files (search/experiment/journal.py); they
are what Ray's own tools and a user's notebook read. Both loggers go into every new tuner's
callbacks, so Ray adds none of its own of these kinds; a tuner saved before keeps Ray's.
"""

from __future__ import annotations

import os
from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from search.engine import compat


class _StagedFirst:
    def _restore_from_remote(self, file_name: str, trial: Any) -> None:  # Ray's hook (compat)
        if not os.path.exists(os.path.join(trial.local_path, file_name)):
            compat.fetch_trial_file(super(), file_name, trial)


class JsonLogger(_StagedFirst, JsonLoggerCallback):
    """Ray's result.json logger, fetching the storage's copy only when none is staged."""


class CSVLogger(_StagedFirst, CSVLoggerCallback):
    """Ray's progress.csv logger, fetching the storage's copy only when none is staged."""
