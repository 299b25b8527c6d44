"""Ray's start-up deadlines, made generous, and a start that failed anyway, said in one line.

Ray gives each of its processes a fixed time to come up: the GCS 30 s to publish its port, a
node 10 s to be found registered, a worker 60 s to register, an agent 30 s. On a loaded machine
(the 2-core CI box runs several searches at once) Ray, slowly but visibly progressing, trips
them and `ray.init` raises. A process that fails exits, and Ray notices that at once: these
deadlines only ever catch one that hangs, so they are set to 10 minutes, far beyond the slowest
start measured here (a local Ray up about 25 s after the launch began, at a load of 8 to 12 on 2
cores). Each is an environment setting Ray reads in every process it starts (and the driver its
own C++ settings when `ray` is first imported): `give_ray_time` sets them before that, unless
the environment already chose.
"""

from __future__ import annotations

import os
from typing import Optional

# Ray 2.59's start-up deadlines: the variable, and what it times (seconds unless named _ms).
DEADLINES = {
    # python/ray/_private/node.py: the GCS server's port file, and as many 1-s connect tries
    "RAY_gcs_server_port_wait_time_s": "600",
    # ray_config_def.h: finding a node registered in the GCS (the driver's start, get_node)
    "RAY_raylet_start_wait_time_s": "600",
    # ray_config_def.h: a worker process registering with its raylet (else it is killed)
    "RAY_worker_register_timeout_seconds": "600",
    # ray_config_def.h: the raylet's agents registering (else the raylet exits)
    "RAY_agent_register_timeout_ms": "600000",
}


# A driver joining a running cluster reads the GCS wait as its number of 1-s connect tries
# (ray/_private/node.py), and a cluster that refuses its token fails every try: with 600 the
# launch said nothing for ten minutes before "refused". A running cluster's GCS is up, so a
# join keeps Ray's own count.
JOIN_KEEPS_RAYS_OWN = ("RAY_gcs_server_port_wait_time_s",)
_GIVEN: set[str] = set()  # the deadlines give_ray_time set (not the user's)


def give_ray_time() -> None:
    """Generous start-up deadlines for Ray, unless the environment set them. Before `import
    ray` for the driver's own settings; the processes Ray starts read them in any case."""
    for name, value in DEADLINES.items():
        if name not in os.environ:
            os.environ[name] = value
            _GIVEN.add(name)


def joining() -> None:
    """Before `ray.init` joins a running cluster: the start-up waits it does not need go back
    to Ray's own (those the user set stay)."""
    for name in JOIN_KEEPS_RAYS_OWN:
        if name in _GIVEN and os.environ.get(name) == DEADLINES[name]:
            del os.environ[name]
        _GIVEN.discard(name)


def unset_deadlines(environ: dict) -> list[str]:
    """`NAME=VALUE` for each deadline `environ` does not set: what the cluster scripts export
    before `ray start` (cluster/_node.sh), so a node started on a loaded machine gets the same
    time as a local launch's Ray (pure)."""
    return [f"{name}={value}" for name, value in DEADLINES.items() if name not in environ]


# How much lower than its own priority Ray runs a worker (trials): `nice(N)` in each worker,
# relative to the raylet that started it, read from the environment Ray's processes inherit.
# Ray's default, 15, suits a node that does nothing else. On a workstation a local search is the
# user's work, and at 15 anything at normal priority (a browser, a test run, another job) takes
# the cores from its trials almost entirely: measured with two busy processes beside a launch,
# minutes to its first trial and a few epochs a minute (bench/trial_niceness.py). So a local
# launch runs its trials at its own priority (0 more), which `nice` on the command sets for the
# whole search, unless the environment chose. A cluster's nodes keep what they were started with.
TRIAL_NICENESS = "RAY_worker_niceness"
LOCAL_TRIAL_NICENESS = "0"


def trials_at_launch_priority() -> None:
    """A local Ray's trials at the launch's own priority, unless the environment chose. Before
    `ray.init` starts the raylet (the workers inherit its environment)."""
    os.environ.setdefault(TRIAL_NICENESS, LOCAL_TRIAL_NICENESS)


# What Ray says when a start-up deadline passed -> (what was slow, the setting that times it).
SLOW = {
    "gcs_server_port": ("Ray's GCS server did not publish its port in time",
                        "RAY_gcs_server_port_wait_time_s"),
    "timed out during startup": ("Ray's raylet did not register in time",
                                 "RAY_raylet_start_wait_time_s"),
    "not registered with GCS": ("Ray's raylet did not register in time",
                                "RAY_raylet_start_wait_time_s"),
}


def start_failed(error: BaseException, load: Optional[float] = None,
                 cpus: Optional[int] = None) -> str:
    """The one line for a local Ray that did not start (pure): what was slow, and how to
    retry."""
    said = (str(error).strip().splitlines() or [type(error).__name__])[0]
    slow, setting = next((found for needle, found in SLOW.items() if needle in said),
                         (None, None))
    busy = (f" on a busy machine (load {load:.1f} on {cpus} CPUs)"
            if load is not None and cpus else "")
    if slow is None:
        return (f"Ray did not start{busy}: {type(error).__name__}: {said}; nothing was run: "
                "launch again")
    now = os.environ.get(setting)
    return (f"{slow}{busy}: {said}; nothing was run: launch again, or give Ray longer with "
            f"{setting}=SECONDS (now {now or 'Ray default'})")


if __name__ == "__main__":  # python -m search.run.raystart: the lines cluster/_node.sh exports
    print("\n".join(unset_deadlines(dict(os.environ))))
