"""The scheduler registry and the stop record that tells ASHA stops from kills."""

import pickle
from types import SimpleNamespace

import ray.cloudpickle

from search.engine.schedulers import KeepStopRecord, build_scheduler

ASHA = SimpleNamespace(type="asha", grace_period=1, reduction_factor=3, brackets=1)


def test_the_stop_record_survives_a_driver_restart():
    """Tune restores the scheduler from tuner.pkl, pickled at the start (an empty record), and
    the callbacks' state from the last snapshot: the keeper must refill the scheduler's set."""
    live = build_scheduler(ASHA, max_epochs=9)
    at_start = ray.cloudpickle.dumps({"scheduler": live,
                                      "callbacks": [KeepStopRecord(live.stopped)]})
    live.stopped.add("trial_a")  # ASHA stopped a trial; then the driver is killed
    snapshot = pickle.loads(pickle.dumps(KeepStopRecord(live.stopped).get_state()))

    restored = pickle.loads(at_start)
    assert restored["scheduler"].stopped == set()
    restored["callbacks"][0].set_state(snapshot)
    assert "trial_a" in restored["scheduler"].stopped  # the same set, not a copy


def test_fifo_never_stops_a_trial():
    fifo = build_scheduler(SimpleNamespace(type="fifo"), max_epochs=3)
    assert fifo.stopped == set() and KeepStopRecord(fifo.stopped).get_state() == {"stopped": []}
