"""The rule that stops a search whose first trials all fail alike (search/run/failfast.py)."""

import pytest

from tune_events import Fed

from search.engine.ledger import Ledger
from search.run.failfast import FailFast, repeated_failure, signature

A, B = "failed: UnpicklingError: invalid load key", "oom: OutOfMemoryError: CUDA"


@pytest.mark.parametrize("ends, k, expected", [
    ([A, A, A], 3, True),
    ([A, A, A, None], 3, True),  # decided at the third end; later ends change nothing
    ([A, A], 3, False),  # not enough trials have ended yet
    ([A, None, A], 3, False),  # one success: failures belong to configs
    ([None, A, A, A], 3, False),  # only the first k count
    ([A, B, A], 3, False),  # different errors
    ([A, A, A], 0, False),  # 0 never aborts
    ([A], 1, True),
])
def test_repeated_failure(ends, k, expected):
    assert repeated_failure(ends, k) is expected


def test_signatures_ignore_sizes_and_addresses_but_not_the_error():
    one = signature("OutOfMemoryError: Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)")
    two = signature("OutOfMemoryError: Tried to allocate 1.50 GiB (GPU 0; 79.1 GiB total)")
    assert one == two
    assert signature("ValueError: x at 0x7f3a") == signature("ValueError: x at 0x7f3b")
    assert signature("KeyError: 'a'") != signature("KeyError: 'b'")
    assert signature("RuntimeError: first line\ntraceback detail") == "RuntimeError: first line"


def fed_failfast(k: int, max_epochs: int) -> Fed:
    """Fail-fast as a launch runs it: after the ledger that decides how each trial ended."""
    ledger = Ledger(max_epochs, stop_tag="asha")
    return Fed(ledger, FailFast(k, ledger))


class _Ended:
    """What FailFast reads of a Ray Trial that ended by itself (no error file)."""

    def __init__(self, trial_id: str, last_result: dict) -> None:
        self.trial_id, self.last_result = trial_id, last_result


def _invalid(trial_id: str, reason: str = "ValueError: pretrained is '/x' but no such file"):
    return _Ended(trial_id, {"epoch": 1, "outcome": "invalid", "reason": reason})


def test_three_alike_self_reported_failures_stop_the_search_with_a_summary():
    stopper = fed_failfast(3, max_epochs=5)
    for trial_id in "abc":
        assert not stopper.stop_all()
        stopper.on_trial_complete(0, [], _invalid(trial_id))
    assert stopper.stop_all()
    assert "a, b, c" in stopper.tripped and "no such file" in stopper.tripped


def test_divergence_and_completed_trials_never_count_as_alike_failures():
    stopper = fed_failfast(3, max_epochs=2)
    stopper.on_trial_complete(0, [], _invalid("a"))
    stopper.on_trial_complete(0, [], _Ended("b", {"epoch": 1, "outcome": "diverged",
                                                  "reason": "DivergenceError: nan"}))
    stopper.on_trial_complete(0, [], _invalid("c"))
    stopper.on_trial_complete(0, [], _invalid("d"))
    assert not stopper.stop_all()  # b broke the run of alike failures among the first 3
