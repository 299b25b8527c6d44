"""The one rule that decides how a trial ended (read by the searcher, the mirror and the record)."""

import pytest
from search.spec.outcome import Outcome, outcome

CASES = [
    # epochs_done, errored, reported, stopped_by_scheduler -> outcome
    (10, False, None, False, Outcome.COMPLETED),
    (10, False, None, True, Outcome.COMPLETED),  # a stop at the last epoch is completion
    (2, False, None, True, Outcome.STOPPED),
    (2, False, None, False, Outcome.KILLED),
    (3, False, "diverged", False, Outcome.DIVERGED),
    (3, False, "oom", True, Outcome.OOM),
    (1, False, "invalid", False, Outcome.INVALID),
    (3, True, None, False, Outcome.FAILED),
    (10, True, "diverged", False, Outcome.FAILED),  # an exception wins over anything reported
]


@pytest.mark.parametrize("epochs, errored, reported, stopped, expected", CASES)
def test_outcome_table(epochs, errored, reported, stopped, expected):
    assert outcome(epochs_done=epochs, max_epochs=10, errored=errored, reported=reported,
                   stopped_by_scheduler=stopped) is expected
