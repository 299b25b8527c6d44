"""The Ray runtime a launch runs on (a local Ray of its own, or an existing cluster), and what
the engines may say on the terminal while it runs."""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Optional

import optuna
import ray

import resnet_core
import search
from search.engine import compat
from search.remote import cluster
from search.remote.auth import make_private_token, private_token, token_file
from search.run.errors import LaunchError
from search.run.interrupt import hangup_blocked
from search.run.raystart import (give_ray_time, joining, start_failed,
                                 trials_at_launch_priority)
from search.spec.redact import RedactSecrets
from search.tracking.store import quiet_client

log = logging.getLogger("resnet_search.launch")

# When this process started its local Ray or joined a cluster (time.time()), and which: what the
# progress lines say while no trial has started yet (search/run/progress.py).
_ray_up: Optional[tuple[float, bool]] = None


def ray_up() -> Optional[tuple[float, bool]]:
    """(when Ray became ready for this launch, whether it is a local Ray of its own), or None
    before init_ray."""
    return _ray_up


def init_ray(address: Optional[str]) -> None:
    """Local Ray by default; `address` joins an existing cluster (search/remote/cluster.py).
    Token authentication stays on (Ray's default): a local cluster creates ~/.ray/auth_token, a
    remote one needs RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or that file. Either way the token file
    is readable by its owner only, and a local Ray listens on 127.0.0.1 only."""
    global _ray_up
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
        private_token(token_file())
        joining()  # a refused token says so in seconds, not after 600 connect tries
        # Workers of a remote cluster get our code shipped with the job.
        try:
            cluster.join(address, runtime_env={"py_modules": [resnet_core, search]})
        except cluster.ClusterError as error:
            raise LaunchError(str(error)) from None
        _ray_up = (time.time(), False)
    else:
        # "local": always a Ray of our own. With no address, Ray joins a cluster that `ray start`
        # left on this machine, and retries forever when that one has died since.
        make_private_token()
        private_token(token_file())
        give_ray_time()  # for the processes Ray starts (the launch set it before `import ray`)
        trials_at_launch_priority()  # not Ray's nice 15: raystart.py says why
        # Nothing of it is for other machines: the token is then not its only guard. Its GCS,
        # raylet and agents share the driver's process group, which a closed terminal's SIGHUP
        # reaches: they start with it blocked, and live on while the driver saves the search.
        try:
            with compat.loopback_node(), hangup_blocked():
                ray.init(address="local", include_dashboard=False, log_to_driver=False)
        except Exception as error:  # noqa: BLE001  whatever Ray raises, the user needs one line
            raise LaunchError(start_failed(error, os.getloadavg()[0], os.cpu_count())) from None
        private_token(token_file())  # in case Ray made one after all
        _ray_up = (time.time(), True)


class OneLineErrors(logging.Filter):
    """Keeps an engine's error message but drops its traceback. Ray logs a failed background
    upload of its experiment state with a full traceback; it uploads again at the next snapshot
    and at the end, so the user needs the line, not Ray's internals."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            first = (str(error).splitlines() or [""])[0]
            said = record.getMessage()
            said += "" if said.endswith(" ") else " "
            record.msg = f"{said}{type(error).__name__}: {first}"
            record.args, record.exc_info, record.exc_text = None, None, None
            record.stack_info = None
        return True


class DropMessages(logging.Filter):
    """Drops an engine's lines that our own output replaces: Ray Tune's interruption notices
    end in "Resume experiment with: Tuner.restore(path=..., trainable=...)", which is not how a
    user of this CLI resumes (the same command again), and its end-of-run bookkeeping."""

    def __init__(self, *starts: str) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


# Loggers whose errors are Ray's own retried housekeeping, not the user's to debug; "ray.tune.tune"
# logs a failed last snapshot (a full storage_path) with two tracebacks and its stack.
ONE_LINE_LOGGERS = ("ray.tune.execution.experiment_state", "ray.tune.tune")
REPLACED = {
    "ray.tune.tune": ("Stop signal received", "Experiment has been interrupted",
                      "Trials did not complete", "Wrote the latest version", "Total run time"),
    # A search stopped before some trials reported has no metrics for them: our table says so.
    "ray.tune.analysis.experiment_analysis": ("Failed to fetch metrics",),
}
# Ray's notice, at every start of a local Ray, that token authentication is on, which goes on
# to say how to turn it off. It is on because the launch keeps it on (Security); its advice is
# not for our users. Ray's warning that authentication is OFF still shows.
TOKEN_AUTH_ON = "Token authentication is enabled for this Ray cluster"


def quiet_engines() -> None:
    """Our progress lines replace the engines' INFO chatter; their warnings still show."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ONE_LINE_LOGGERS:
        logging.getLogger(name).addFilter(OneLineErrors())
    for name, starts in REPLACED.items():
        logging.getLogger(name).addFilter(DropMessages(*starts))
    # On the handler Ray's loggers share: the notice's own logger is named after a private Ray
    # module, which only search/engine/compat.py may name.
    for handler in logging.getLogger("ray").handlers:
        handler.addFilter(DropMessages(TOKEN_AUTH_ON))
    quiet_client()
    # A tracking URI's token never reaches a log line: ours, the engines' (MLflow quotes the
    # URL it failed on), through whichever handler prints them.
    for name in ("", "ray", "mlflow", "resnet_search"):
        logger = logging.getLogger(name)
        logger.addFilter(RedactSecrets())
        for handler in logger.handlers:
            handler.addFilter(RedactSecrets())
