"""storage_path ran out of space (ENOSPC): final for the search, not for the trial.

A trial whose checkpoint cannot be written to a full storage_path fails in Ray, and Ray retries
it from its last checkpoint: into the same full disk, spending the trial's retries (and, at
`trial.max_failures: 0`, marking a good configuration failed) while the driver's own writes fail
next and it ends in a traceback. Nothing about the trial is wrong, and nothing more can be saved:
the search has to stop, resumable, until space is freed.

`StorageGuard` is the Tune callback that sees such a trial failure first: it takes the failure
back (`compat.forget_failure`: the retry Ray already scheduled costs the trial nothing) and asks
the launch to stop the search the way `resnet-search stop` does (Tune saves what it still can,
the running trials stay resumable). The driver ends with one line naming storage_path; the
driver's own writes failing for want of space (`no_space`) end the same way.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Callable, Optional

from ray.tune import Callback

from search.engine import compat
from search.engine.trial_errors import error_reason

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from search.experiment.storage import StoragePath

NO_SPACE = "no space left on device"


def no_space(error: BaseException | str | None) -> bool:
    """Whether `error` (an exception, with its causes, or a trial's error text) is a storage that
    ran out of space."""
    if isinstance(error, str):
        text = error.lower()
        return NO_SPACE in text or "[errno 28]" in text
    seen: set[int] = set()
    while isinstance(error, BaseException) and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if no_space(str(error)):  # an engine's wrapper of an OSError it caught
            return True
        error = error.__cause__ or error.__context__
    return False


def storage_full(directory: StoragePath) -> str:
    """The one line a search that filled its storage ends with."""
    return (f"storage_path is full: {directory} has no space left on device; the search is saved "
            "as far as the storage took it: free space there, then run the same command to "
            "resume it")


class StorageGuard(Callback):
    """Takes a trial failure that is a full storage back, and has the search stopped."""

    def __init__(self) -> None:
        self.full: Optional[str] = None  # the trial error that showed it
        self.stop: Optional[Callable[[], Any]] = None  # the launch's stop (not pickled)

    def __getstate__(self) -> dict:
        return {"full": None, "stop": None}

    def _failed(self, trial: Trial) -> None:
        reason = error_reason(trial)
        if not no_space(reason):
            return
        compat.forget_failure(trial)
        self.full = reason
        if self.stop is not None:
            self.stop()

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial,
                         **info: Any) -> None:
        self._failed(trial)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        self._failed(trial)
