"""The priority a local launch runs its trials at (search/run/raystart.py): the launch's own, not
Ray's nice 15, which lets any normal-priority work on a workstation starve a search. Read from
the kernel: /proc/<pid>/stat of the real Ray worker that runs the trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from driving import MEDIUM_DATA, cli_env, driver_log, wait_for
from processes import kill_ours, trial_worker

pytestmark = pytest.mark.ray

LOWER_BY = 3  # the launch is started with `nice -n 3`: its trials must be there too, not +15


def niceness(pid: int) -> int:
    """The nice value the kernel holds for `pid` (/proc/<pid>/stat: field 19)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(") ", 1)[1].split()[16])


def test_a_local_launch_runs_its_trials_at_its_own_priority(tmp_path, write_spec, digits_spec):
    here = os.nice(0)
    assert here + LOWER_BY + 1 < 19, f"run the tests below nice {18 - LOWER_BY}: {here}"
    spec = digits_spec(budget={"trials": 1, "max_epochs": 30}, scheduler={"type": "fifo"},
                       data=MEDIUM_DATA)
    env = {k: v for k, v in cli_env(tmp_path).items() if k != "RAY_worker_niceness"}
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(
            ["nice", "-n", str(LOWER_BY), sys.executable, "-m", "search.cli", "launch",
             str(write_spec(spec))], cwd=tmp_path, env=env, start_new_session=True,
            stdout=log, stderr=subprocess.STDOUT)
    try:
        worker = wait_for(lambda: trial_worker(tmp_path), 0, "the trial's worker", proc=driver)
        assert niceness(driver.pid) == here + LOWER_BY  # `nice` exec'd the launch itself
        # Ray's default would have it at min(19, here + 3 + 15); the launch's own is ours.
        assert niceness(worker.pid) == here + LOWER_BY, driver_log(driver)
        assert "RAY_worker_niceness=0" in open(f"/proc/{worker.pid}/environ").read().replace(
            "\0", " ")
    finally:
        os.killpg(driver.pid, signal.SIGINT)
        try:
            driver.wait(timeout=300)
        finally:
            kill_ours(tmp_path)
