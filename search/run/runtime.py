"""The Ray runtime a launch runs on: a local Ray of its own, or an existing cluster."""

from __future__ import annotations

import os
from typing import Optional

import ray

import resnet_core
import search
from search.remote import cluster


class LaunchError(RuntimeError):
    """The experiment cannot start or continue; the message says why and what to do."""


def init_ray(address: Optional[str]) -> None:
    """Local Ray by default; `address` joins an existing cluster (search/remote/cluster.py).
    Token authentication stays on (Ray's default): a local cluster creates ~/.ray/auth_token, a
    remote one needs RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or that file."""
    if ray.is_initialized():
        return
    # A per-epoch checkpoint with num_to_keep forces a state snapshot each time; with short
    # epochs Ray warns about it on every trial. The snapshot is what makes resume exact: keep it.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Our progress lines and final table replace Ray's status boxes (verbose=0 then is silent).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # A failed trial is one line with its reason (search/run/progress.py); Ray's traceback of it
    # is kept in the trial's error.txt instead of flooding the terminal.
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    # The same errors again when a stopped search drops the results of trials that had failed.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    if address:
        # Workers of a remote cluster get our code shipped with the job.
        try:
            cluster.join(address, runtime_env={"py_modules": [resnet_core, search]})
        except cluster.ClusterError as error:
            raise LaunchError(str(error)) from None
    else:
        # "local": always a Ray of our own. With no address, Ray joins a cluster that `ray start`
        # left on this machine, and retries forever when that one has died since.
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
