"""Optuna without its chatter, for code that builds studies as a matter of course."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import optuna


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """No "A new study created" line, no ExperimentalWarning (multivariate TPE's `group`, metric
    names): a study rebuilt at every launch, or one per replayed search, is not news."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)
