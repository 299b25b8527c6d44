"""What a failed Ray trial died of, read from the error file Ray wrote for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ray.cloudpickle

from search.spec.problems import strip_ansi

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


def error_reason(trial: Trial) -> str:
    """The exception a trial died of. Ray has written it to the trial's local error file when
    `on_trial_error` runs (its storage copy is not synced yet); that file is our own experiment
    storage, as trusted as the state Ray unpickles on restore."""
    try:
        with open(trial.pickled_error_file, "rb") as handle:
            error = ray.cloudpickle.load(handle)
    except Exception:  # noqa: BLE001 - a missing reason must not break tracking
        return "the trial raised; see error.txt in its Ray trial directory"
    cause = getattr(error, "cause", None) or error  # Ray wraps the trial's own exception
    return strip_ansi(f"{type(cause).__name__}: {cause}")
