"""Ray's start-up deadlines: generous unless the environment chose, each a setting the installed
Ray still reads, and a start that failed said in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from search.run.raystart import DEADLINES, JOIN_KEEPS_RAYS_OWN, give_ray_time, joining, start_failed


def test_each_deadline_is_a_setting_the_installed_ray_reads():
    import ray

    root = Path(ray.__file__).parent
    python = "".join(p.read_text(errors="replace") for p in (root / "_private").glob("*.py"))
    binary = (root / "_raylet.so").read_bytes()
    for name in DEADLINES:
        assert name in python or name.encode() in binary, name


def test_the_environment_wins_and_the_rest_is_generous(monkeypatch):
    for name in DEADLINES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", "5")
    give_ray_time()
    assert os.environ["RAY_gcs_server_port_wait_time_s"] == "5"
    assert os.environ["RAY_raylet_start_wait_time_s"] == "600"
    assert os.environ["RAY_agent_register_timeout_ms"] == "600000"


@pytest.mark.parametrize("users", [False, True])
def test_a_join_gives_back_the_gcs_wait_it_reads_as_connect_tries_unless_the_user_set_it(
        monkeypatch, users):
    """A driver joining a cluster tries the GCS once a second, as often as this setting says:
    600 tries made a refused token a ten-minute silence (tests/e2e/test_cluster.py)."""
    for name in DEADLINES:
        monkeypatch.delenv(name, raising=False)
    if users:
        monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", "45")
    give_ray_time()
    joining()
    assert os.environ.get("RAY_gcs_server_port_wait_time_s") == ("45" if users else None)
    assert os.environ["RAY_raylet_start_wait_time_s"] == "600"  # the rest are not read there


def test_the_gcs_wait_is_what_a_joining_driver_counts_its_connect_tries_by():
    import inspect

    from ray._private import node

    source = inspect.getsource(node.Node)
    for name in JOIN_KEEPS_RAYS_OWN:
        assert f'os.environ.get("{name}")' in source and "num_retries" in source, name


@pytest.mark.parametrize("said, slow, setting", [
    ("Timed out waiting for file /tmp/ray/session_1/gcs_server_port_ab",
     "Ray's GCS server did not publish its port in time", "RAY_gcs_server_port_wait_time_s"),
    ("The current node timed out during startup. This could happen because some of the "
     "raylet failed to startup or the GCS has become overloaded.",
     "Ray's raylet did not register in time", "RAY_raylet_start_wait_time_s"),
])
def test_a_deadline_that_passed_names_what_was_slow_and_how_to_retry(said, slow, setting,
                                                                     monkeypatch):
    monkeypatch.setenv(setting, "7")
    line = start_failed(RuntimeError(said + "\nmore of Ray's text"), load=9.25, cpus=2)
    assert line == (f"{slow} on a busy machine (load 9.2 on 2 CPUs): {said}; nothing was run: "
                    f"launch again, or give Ray longer with {setting}=SECONDS (now 7)")


def test_any_other_failure_is_one_line_too():
    line = start_failed(OSError("[Errno 28] No space left on device"))
    assert line == ("Ray did not start: OSError: [Errno 28] No space left on device; nothing "
                    "was run: launch again")


def test_a_local_launch_runs_trials_at_its_own_priority_unless_the_environment_chose(
        monkeypatch):
    import ray
    from ray._private import ray_constants

    from search.run.raystart import TRIAL_NICENESS, trials_at_launch_priority

    # Ray's own name for it (its job manager sets it for a job's supervisor the same way).
    assert ray_constants.RAY_WORKER_NICENESS == TRIAL_NICENESS
    assert b"worker_niceness" in (Path(ray.__file__).parent / "_raylet.so").read_bytes()
    monkeypatch.delenv(TRIAL_NICENESS, raising=False)
    trials_at_launch_priority()
    assert os.environ[TRIAL_NICENESS] == "0"
    monkeypatch.setenv(TRIAL_NICENESS, "15")  # Ray's default, asked for
    trials_at_launch_priority()
    assert os.environ[TRIAL_NICENESS] == "15"


def test_the_cluster_scripts_export_the_deadlines_the_environment_does_not_set():
    from search.run.raystart import unset_deadlines

    chosen = {"RAY_agent_register_timeout_ms": "5000", "PATH": "/usr/bin"}
    assert unset_deadlines(chosen) == [f"{name}={value}" for name, value in DEADLINES.items()
                                       if name != "RAY_agent_register_timeout_ms"]
    assert unset_deadlines(dict(DEADLINES)) == []
