"""Ctrl+C and SIGTERM handed to Tune's graceful stop, in a real process receiving real signals."""

import signal
import subprocess
import sys

import pytest

from search.run.interrupt import Interruption, exit_code

# A stand-in for a driver inside Tuner.fit: Tune listens on SIGUSR1 for its graceful stop (as
# ray.tune.tune._setup_signal_catching installs it). The process signals itself.
DRIVER = """
import os, signal, sys, time
from search.run.interrupt import Interruption

stopped = []
# What Interruption must put back: Python's own handler, or SIG_IGN when the process was started
# with SIGINT ignored (a background job of a shell without job control).
before = signal.getsignal(signal.SIGINT)
with Interruption() as interruption:
    interruption.hooks.append(lambda: print("hook", flush=True))
    if sys.argv[2] == "in-fit":
        signal.signal(signal.SIGUSR1, lambda *a: stopped.append(True))
    try:
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        time.sleep(0.5)
        print("tune stopped" if stopped else "no stop", interruption.name, flush=True)
        if sys.argv[3] != "once":  # a second signal
            os.kill(os.getpid(), getattr(signal, sys.argv[3]))
            time.sleep(0.5)
            print("still saving", flush=True)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", interruption.name, flush=True)
print("restored", signal.getsignal(signal.SIGINT) is before, flush=True)
if interruption.hung_up:  # the ending that follows must outlive the shell's next SIGHUP
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(0.2)
    print("outlived SIGHUP", flush=True)
"""


def run(sig: str, phase: str, times: str = "once") -> list[str]:
    done = subprocess.run([sys.executable, "-c", DRIVER, sig, phase, times], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_search_runs_the_hooks_and_asks_tune_to_stop(sig):
    assert run(sig, "in-fit") == ["hook", f"tune stopped {sig}", "restored True"]


def test_a_closed_terminal_is_an_interruption_that_outlives_the_hangups_that_follow():
    assert run("SIGHUP", "in-fit") == ["hook", "tune stopped SIGHUP", "restored True",
                                       "outlived SIGHUP"]
    # The shell passes its SIGHUP on, and the kernel sends one when the shell exits: the same
    # event, not a second Ctrl+C.
    assert run("SIGHUP", "in-fit", "SIGHUP") == ["hook", "tune stopped SIGHUP", "still saving",
                                                 "restored True", "outlived SIGHUP"]
    # Ctrl+C, then the terminal is closed: still saving.
    assert run("SIGINT", "in-fit", "SIGHUP") == ["hook", "tune stopped SIGINT", "still saving",
                                                 "restored True", "outlived SIGHUP"]


def test_a_second_signal_stops_at_once():
    assert run("SIGTERM", "in-fit", "SIGINT") == ["hook", "tune stopped SIGTERM",
                                                  "KeyboardInterrupt SIGTERM", "restored True"]


def test_a_signal_before_tune_listens_stops_at_once():
    # SIGUSR1's default action would kill the driver without saving anything.
    assert run("SIGINT", "before-fit") == ["KeyboardInterrupt SIGINT", "restored True"]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                       (signal.SIGHUP, 129)])
def test_exit_codes_follow_the_shell(sig, code):
    assert exit_code(sig) == code


# `resnet-search stop`: a request file a watcher thread hands to the same graceful stop.
WATCHED = """
import os, signal, sys, time
from pathlib import Path
from search.experiment.stop import request_stop, stop_request
from search.run.interrupt import Interruption, StopWatch

directory = Path(sys.argv[1])
stopped = []
with Interruption() as interruption, StopWatch(lambda: stop_request(directory), interruption,
                                               every_s=0.05):
    interruption.hooks.append(lambda: print("hook", flush=True))
    request_stop(directory, by="alice@laptop")
    time.sleep(0.5)  # Tune is not listening yet: the request must wait, not kill the process
    print("alive before tune", interruption.interrupted, flush=True)
    signal.signal(signal.SIGUSR1, lambda *a: stopped.append(True))  # Tune starts listening
    deadline = time.time() + 10
    while not stopped and time.time() < deadline:
        time.sleep(0.05)
    print("tune stopped" if stopped else "no stop", interruption.name, flush=True)
"""


def test_a_stop_request_waits_for_tune_then_takes_the_signal_path(tmp_path):
    done = subprocess.run([sys.executable, "-c", WATCHED, str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["alive before tune False", "hook",
                                        "tune stopped stop requested by alice@laptop"]


def test_a_request_after_a_signal_changes_nothing():
    interruption = Interruption()
    interruption.signal = signal.SIGINT
    assert interruption.request("stop requested by bob") is True
    assert interruption.name == "SIGINT" and interruption.requested is None
