"""The guardian ends exactly the processes of a dead driver's session, found by the session
token every process Ray starts inherits (real processes: a stand-in driver and sleepers)."""

import os
import signal
import subprocess
import sys
import time

from search.run.reaper import MARK, alive, processes_of

DRIVER = """
import os, subprocess, time
from search.run import reaper
token = reaper.mark_session()
reaper.start_guardian(token)
# Detached like Ray's agents and workers (a process group of their own): a kill of the driver's
# group does not reach them. One carries the session's token, as Ray's processes do; one not.
marked = subprocess.Popen(["sleep", "300"], start_new_session=True)
env = {k: v for k, v in os.environ.items() if k != reaper.MARK}
other = subprocess.Popen(["sleep", "300"], start_new_session=True, env=env)
print(token, marked.pid, other.pid, flush=True)
time.sleep(300)
"""


def wait_until(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_killed_drivers_session_is_reaped_and_nothing_else():
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    token, marked, other = driver.stdout.readline().split()
    marked, other = int(marked), int(other)
    try:
        assert processes_of(token) == [marked]  # the guardian does not carry the token
        time.sleep(1)
        assert alive(marked), "the guardian must wait while the driver lives"
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        assert wait_until(lambda: not alive(marked), 20), "the session's process outlived it"
        assert alive(other), "a process of another session was reaped"
        assert processes_of(token) == []
    finally:
        for pid in (marked, other):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_token_matches_only_itself():
    child = subprocess.Popen(["sleep", "30"], env={**os.environ, MARK: "abc123"})
    try:
        assert child.pid in processes_of("abc123")
        assert processes_of("abc12") == [] and processes_of("abc1234") == []
    finally:
        child.kill()
        child.wait()
