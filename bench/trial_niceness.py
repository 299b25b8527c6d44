"""How a search fares beside other work, by the priority its trials run at (issue 18).

    bash .ci/env python bench/trial_niceness.py [--settings 0 15] [--window 120] [--cap 420]
                                                [--own-session] [--name trial_niceness]

For each setting of RAY_worker_niceness (0: the product's default for a local launch, the
launch's own priority; 15: Ray's default), alternating: two busy processes (a CPU burner each,
at the priority this script runs at, as a user's other work would be) start, then a real
`resnet-search launch` of the demo's digits search (FIFO, so every trial runs on; 2 trials at
once on the 2 cores), as a new experiment in a temporary directory. Measured from the launch's
start: when its first trial started (the `start` line it prints), when the first epoch was
reported (the driver's journal, `<experiment>/results/*.jsonl`), and the trial-epochs reported
in the `--window` seconds after that (epochs per minute). A setting whose first epoch does not
come within `--cap` seconds is recorded as such (starved). Then the launch is stopped (SIGINT,
as Ctrl+C) and the burners end.

Writes bench/results/trial_niceness.json. The machine is shared: the load before each run is
recorded, and the figures are one run each unless --repeats says more.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import provenance, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BURN = "while True:\n    pass\n"


def spec_in(work: Path, name: str) -> Path:
    spec = yaml.safe_load((REPO / "spaces" / "digits.yaml").read_text())
    spec.update(name=name, storage_path=str(work / "runs"),
                tracking={"mlflow_uri": f"sqlite:///{work / 'mlflow.db'}"},
                budget={"trials": 8, "max_epochs": 200}, scheduler={"type": "fifo"})
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def epochs(experiment: Path) -> int:
    """Trial-epochs the driver has journalled so far (one line per reported result)."""
    return sum(len(p.read_text().splitlines()) for p in (experiment / "results").glob("*.jsonl"))


def processes_of(home: Path) -> list[int]:
    """Live processes whose HOME is `home` (the launch's own and its Ray's)."""
    needle = f"HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def one_run(setting: int, work: Path, window_s: float, cap_s: float, n: int,
            own_session: bool) -> dict[str, Any]:
    home = work / f"home-{setting}-{n}"
    home.mkdir()
    spec = spec_in(work, f"nice{setting}-{n}")
    experiment = work / "runs" / spec.stem
    load_before = os.getloadavg()[0]
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1",
           "RAY_worker_niceness": str(setting)}
    log = open(work / f"launch-{setting}-{n}.log", "w+")
    began = time.monotonic()
    # The launch's own process group (SIGINT reaches it and its Ray), in this script's session
    # unless --own-session: with the kernel's autogroup scheduling (Linux's default for a
    # desktop), niceness orders processes only within a session, and work started from the
    # same terminal (or by the same test run) shares it with the launch.
    launch = subprocess.Popen([sys.executable, "-m", "search.cli", "launch", str(spec)],
                              cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=own_session,
                              process_group=None if own_session else 0)
    first_trial: Optional[float] = None
    first_epoch: Optional[float] = None
    counted: Optional[int] = None
    try:
        while time.monotonic() - began < cap_s + window_s and launch.poll() is None:
            now = time.monotonic() - began
            if first_trial is None and " start " in open(log.name).read():
                first_trial = now
            if first_epoch is None and epochs(experiment) > 0:
                first_epoch, at_first = now, epochs(experiment)
            if first_epoch is None and now >= cap_s:
                break  # starved: no epoch within the cap
            if first_epoch is not None and now - first_epoch >= window_s:
                counted = epochs(experiment) - at_first
                break
            time.sleep(0.5)
    finally:
        load_during = os.getloadavg()[0]
        os.killpg(launch.pid, signal.SIGINT)
        try:
            launch.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pass
        for pid in processes_of(home):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for burner in burners:
            burner.kill()
            burner.wait()
        log.close()
    return {"setting": setting, "first_trial_s": _round(first_trial),
            "first_epoch_s": _round(first_epoch), "window_s": window_s,
            "epochs_in_window": counted,
            "epochs_per_min": None if counted is None else round(counted * 60 / window_s, 1),
            "starved": first_epoch is None, "cap_s": cap_s,
            "launch_session": "its own" if own_session else "the busy processes'",
            "load_before": round(load_before, 2), "load_during": round(load_during, 2)}


def _autogroup() -> Optional[bool]:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return None


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=int, nargs="+", default=[0, 15])
    parser.add_argument("--window", type=float, default=120.0,
                        help="seconds after the first epoch over which epochs are counted")
    parser.add_argument("--cap", type=float, default=420.0,
                        help="seconds a setting gets for its first epoch before it counts as "
                             "starved")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--own-session", action="store_true",
                        help="start the launch in a session of its own (another terminal): with "
                             "autogroup scheduling the busy processes then barely slow it")
    parser.add_argument("--name", default="trial_niceness", help="bench/results/NAME.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rs-nice-bench-"))
    runs = []
    try:
        for n in range(args.repeats):
            for setting in args.settings:
                run = one_run(setting, work, args.window, args.cap, n, args.own_session)
                runs.append(run)
                print(f"RAY_worker_niceness={setting}: first trial {run['first_trial_s']} s, "
                      f"first epoch {run['first_epoch_s']} s, {run['epochs_per_min']} "
                      f"epochs/min (load {run['load_during']})", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"what": "two busy processes at normal priority beside a local digits launch "
                      "(FIFO, 2 trials at once): time to its first trial and epoch, and its "
                      "epoch rate, by RAY_worker_niceness",
              "busy_processes": 2, "busy_priority": os.nice(0), "cpus": os.cpu_count(),
              "sched_autogroup": _autogroup(),
              "runs": runs, "provenance": provenance("cpu")}
    write_result(args.name, result)
    return result


if __name__ == "__main__":
    main()
