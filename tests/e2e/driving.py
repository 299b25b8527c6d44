"""Driving the real CLI in e2e tests: start a launch, wait for what Ray writes, read what Ray
stored and what MLflow recorded. Shared by the fault and lifecycle tests."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from mlflow.tracking import MlflowClient
from processes import kill_ours, psutil  # Ray's bundled copy (tests/e2e/processes.py)

from search.experiment.decide import ray_directory
from search.experiment.journal import read_journal
from search.experiment.storage import read_text

PARENT_TAG = "mlflow.parentRunId"
NAME = "e2e-digits"  # the experiment name of conftest's tiny digits spec

# Fewer, smaller batches: the bookkeeping tests are about bookkeeping, not accuracy.
SMALL_DATA = {"dataset": "digits", "val_fraction": 0.2, "subset": 384}
# Half of digits' training split: epochs of a second or so, for searches that must still be
# running when another process looks at them or stops them.
MEDIUM_DATA = {"dataset": "digits", "val_fraction": 0.2, "subset": 768}


def small_search(digits_spec: Callable, write_spec: Callable) -> tuple[dict, Path, Path]:
    """4 trials x 3 epochs in FIFO order on a small digits subset: (spec, its file, the
    experiment directory)."""
    spec = digits_spec(budget={"trials": 4, "max_epochs": 3}, scheduler={"type": "fifo"},
                       data=SMALL_DATA)
    return spec, write_spec(spec), Path(spec["storage_path"]) / spec["name"]


# --- processes ---------------------------------------------------------------------------------

def cli_env(home: Path) -> dict:
    """What `conftest.run_cli` gives the CLI: HOME is the test's own directory, so every process
    Ray starts from this driver inherits it and is recognisable as this test's."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0", "HOME": str(home)}


def start_launch(spec_path: Path, cwd: Path, *args: str) -> subprocess.Popen:
    """`resnet-search launch` as the leader of a new session (its output in cwd/driver.log).
    Killing that process group kills the driver, raylet and GCS, but not the Ray workers: each
    leads a process group of its own (measured), so `kill_ours` sweeps them up."""
    with open(cwd / "driver.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "search.cli", "launch", str(spec_path), *args], cwd=cwd,
            env=cli_env(cwd), start_new_session=True, stdout=log, stderr=subprocess.STDOUT)


def trial_workers(driver: subprocess.Popen) -> list[psutil.Process]:
    """The Ray workers of a local launch (its raylet's children, titled `ray::...` by Ray):
    the processes that train its trials."""
    found = []
    for proc in psutil.Process(driver.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
            if proc.cmdline()[0].startswith("ray::"):
                found.append(proc)
    return found


@contextlib.contextmanager
def held(driver: subprocess.Popen) -> Iterator[list[psutil.Process]]:
    """A running search held still: its trials' processes stopped (SIGSTOP) while the test does
    what takes seconds on a loaded machine (another CLI call, a stop request), and resumed on
    leaving. Trials run at the launch's own priority (search/run/raystart.py), so on a fast or
    idle machine a small search could otherwise end before the test's next step; the driver
    itself runs on and answers. What a held trial would have trained it trains after."""
    workers = trial_workers(driver)
    assert workers, "no trial is running to hold"
    for proc in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.suspend()
    try:
        yield workers
    finally:
        for proc in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.resume()


def ctrl_c(driver: subprocess.Popen, timeout: float = 300) -> int:
    """Ctrl+C in the launch's terminal (SIGINT to its process group) while its trials are held,
    so the search is still running when it comes however fast they are; the launch's exit code
    once it has saved the search (SIGKILLed if it has not exited by `timeout`)."""
    try:
        with held(driver):
            os.killpg(driver.pid, signal.SIGINT)
            time.sleep(1)  # the driver's handler runs at once; its trials wait meanwhile
        return driver.wait(timeout=timeout)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)


@contextlib.contextmanager
def driver_paused(driver: subprocess.Popen) -> Iterator[None]:
    """The launch's own process stopped (SIGSTOP) while the test looks at what it has written:
    nothing the driver decides (a new trial, a result told to the searcher, the search's end)
    can happen between what the test sees and what it does next, however fast the trials."""
    proc = psutil.Process(driver.pid)
    proc.suspend()
    try:
        yield
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.resume()


def kill_driver(driver: subprocess.Popen, home: Path) -> None:
    """SIGKILL the driver and, as a crashed machine would, every Ray process it started."""
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    kill_ours(home)


class Terminal:
    """A pseudo-terminal a launch runs in, as in an SSH session: the controlling terminal of
    the launch's session (its stdin, stdout and stderr), its output copied to cwd/driver.log by
    a reader thread (a full terminal would block the launch). `hang_up()` closes it as sshd does
    when the connection drops: the kernel sends SIGHUP to the session's leader."""

    def __init__(self, cwd: Path) -> None:
        self.master, self.slave = os.openpty()
        self.log = cwd / "driver.log"
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        os.close(self.slave)  # the launch holds its own
        self._thread.start()

    def _read(self) -> None:
        with open(self.log, "ab") as log:
            while not self._closing.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if not ready:
                    continue
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: nothing holds the terminal open any more
                    data = b""
                if not data:
                    break
                log.write(data)
                log.flush()
        os.close(self.master)  # here, not while this thread reads it

    def hang_up(self) -> None:
        self._closing.set()
        self._thread.join(timeout=10)


def start_in_terminal(spec_path: Path, cwd: Path, *args: str) -> tuple[subprocess.Popen,
                                                                        Terminal]:
    """`resnet-search launch` in a session of its own whose controlling terminal is a new
    pseudo-terminal (TIOCSCTTY, then exec: the pid is the launch's)."""
    terminal = Terminal(cwd)
    take_terminal = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                     "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
    proc = subprocess.Popen(
        [sys.executable, "-c", take_terminal, "-m", "search.cli", "launch", str(spec_path),
         *args], cwd=cwd, env=cli_env(cwd), start_new_session=True, stdin=terminal.slave,
        stdout=terminal.slave, stderr=terminal.slave)
    terminal.start()
    return proc, terminal


def driver_output(proc: subprocess.Popen) -> str:
    """Everything the launch has printed so far (its driver.log)."""
    spec = proc.args[proc.args.index("launch") + 1]
    log = Path(spec).parent / "driver.log"  # the spec and the log share tmp_path
    return log.read_text() if log.exists() else ""


def driver_log(proc: subprocess.Popen) -> str:
    """The end of what the launch printed, for an assertion's message."""
    return driver_output(proc)[-3000:]


def wait_for(condition: Callable[[], object], timeout_s: float, what: str,
             proc: Optional[subprocess.Popen] = None) -> object:
    """`condition()` once it is true. With `proc` (the driver), as long as the driver lives: a
    loaded machine makes a launch slow, never wrong (Ray runs trials below normal priority, and
    the machine is shared), so a fixed deadline would fail a test that is only slow; a driver
    that exits first fails it at once with its log, and pytest-timeout guards against a hang.
    Without `proc`, `timeout_s` bounds the wait."""
    deadline = time.monotonic() + timeout_s
    while proc is not None or time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver exited ({proc.returncode}) before {what}:\n"
                                 + driver_log(proc))
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# --- what Ray stored: storage_path/NAME/ray/<trial_id>/ (search/run/tuner.py) -----------------

def trial_dirs(experiment: Path) -> list[Path]:
    """The trial folders Ray made in the experiment directory `experiment` (in its `ray/`)."""
    ray = ray_directory(experiment)
    if not ray.is_dir():
        return []
    return sorted(p for p in ray.iterdir() if (p / "params.json").exists())


def saved_statuses(experiment: Path) -> dict[str, str]:
    """Trial id -> status in Ray's newest experiment snapshot: exactly what a restore brings
    back. A trial started after the last snapshot is not in it, whatever is on disk or in
    MLflow; a trial that reported its last epoch after it is still RUNNING there."""
    # Named by the session's start.
    files = sorted(ray_directory(experiment).glob("experiment_state-*.json"))
    try:
        state = json.loads(files[-1].read_text()) if files else {"trial_data": []}
    except json.JSONDecodeError:  # the snapshot Ray is writing right now
        return {}
    trials = (json.loads(trial) for trial, _ in state["trial_data"])
    return {trial["trial_id"]: trial["status"] for trial in trials}


def saved_trials(experiment: Path) -> set[str]:
    return set(saved_statuses(experiment))


def results(trial_dir: Path) -> list[dict]:
    """The results Ray's JSON logger wrote for a trial, one line per report, in order."""
    try:  # (on S3 in one GET: the driver replaces the object while we read)
        lines = read_text(trial_dir / "result.json").splitlines()
    except FileNotFoundError:
        lines = []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # the line being written right now
            break
    return out


def epochs_of(trial_dir: Path) -> list[int]:
    return [r["epoch"] for r in results(trial_dir)]


def journaled(experiment: Path, trial_id: str) -> list[int]:
    """The epochs of every result the drivers saw of a trial, in order (the record's journal,
    search/experiment/journal.py): an epoch trained again after a driver was killed is there
    twice."""
    lines = read_journal(experiment, trial_id)
    assert lines is not None, f"the driver kept no journal of trial {trial_id}"
    return [json.loads(line)["epoch"] for line in lines]


def once_each(epochs: list[int]) -> list[int]:
    """`epochs` with each epoch trained again after a driver was killed counted once, in order.
    A driver killed between a report and Ray's snapshot of its checkpoint leaves Ray's next
    launch resuming from the checkpoint before: the epochs after it are trained again (the
    record keeps the last report of each: search.experiment.results.per_epoch)."""
    return sorted(set(epochs))


# --- what MLflow recorded ------------------------------------------------------------------------

def runs_of(uri: str, name: str = NAME) -> tuple[MlflowClient, list, list]:
    """(client, parent runs, child runs) of the experiment's MLflow experiment."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    assert found is not None, f"no MLflow experiment {name}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    return (client, [r for r in runs if PARENT_TAG not in r.data.tags],
            [r for r in runs if PARENT_TAG in r.data.tags])


def steps(client: MlflowClient, run: object, metric: str = "val_acc") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))


def by_param(children: list, name: str) -> dict[str, list]:
    groups: dict[str, list] = {}
    for child in children:
        groups.setdefault(child.data.params[name], []).append(child)
    return groups
