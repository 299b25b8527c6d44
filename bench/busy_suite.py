"""The test suite on a busy machine: no test may depend on the machine being idle (issue 18).

    bash .ci/env python bench/busy_suite.py [--busy 2] [--nice 10] [--name busy_suite] [-- PYTEST ARGS]

Starts `--busy` busy processes (a CPU burner each) at nice `--nice`, runs the README's test
command (`pytest -m "not cuda" -n 3 --dist loadfile` with this interpreter, from the repository
root) beside them for the whole run, and ends the burners however the run ends (also on Ctrl+C).
Arguments after `--` go to pytest in place of those (e.g. `-- -m "not cuda" -k "faults or
commands"` for a subset). Not part of CI: a full run takes as long as the suite takes on a loaded machine.

Writes bench/results/NAME.xml (pytest's JUnit XML: every test's outcome and seconds) and
bench/results/NAME.json: the command, pytest's exit code, wall time, counts (passed, failed,
errors, skipped), the slowest tests, the failures with their first line, and the 1-minute load
average sampled every 10 s.

The burners are this script's children, in its session; pytest and the commands it starts run
there too, but a launch a test starts in a session of its own (start_new_session) is in another
autogroup where the kernel schedules by autogroup (sched_autogroup_enabled=1, recorded), and
then feels the burners only as two more busy sessions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import RESULTS, provenance, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BURN = "while True:\n    pass\n"
# The README's test command (what .ci/run runs), so the busy run measures the suite CI runs.
DEFAULT_PYTEST = ["-m", "not cuda", "-n", "3", "--dist", "loadfile"]
SAMPLE_S = 10.0


def burners(count: int, nice: int) -> list[subprocess.Popen]:
    """`count` CPU burners at nice `nice` (relative to this script)."""
    return [subprocess.Popen([sys.executable, "-c", BURN], preexec_fn=lambda: os.nice(nice),
                             stdin=subprocess.DEVNULL) for _ in range(count)]


def end(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class LoadSampler(threading.Thread):
    """The 1-minute load average every SAMPLE_S seconds while the suite runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            if self.done.wait(SAMPLE_S):
                return


def junit_summary(path: Path, slowest: int = 20) -> dict[str, Any]:
    """Counts, the slowest tests and the failures from pytest's JUnit XML (pure over the file)."""
    if not path.is_file():
        return {"junit": None}
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = {"failure": "failed", "error": "error"}.get(kind, kind)
                message = (found.get("message") or found.text or "").strip().splitlines()
                message = message[0][:300] if message else ""
                break
        cases.append({"test": f"{case.get('classname')}::{case.get('name')}",
                      "seconds": round(float(case.get("time") or 0.0), 1),
                      "outcome": outcome, "message": message})
    counts = {kind: sum(c["outcome"] == kind for c in cases)
              for kind in ("passed", "failed", "error", "skipped")}
    return {"tests": len(cases), **counts,
            "slowest": [{k: c[k] for k in ("test", "seconds", "outcome")}
                        for c in sorted(cases, key=lambda c: -c["seconds"])[:slowest]],
            "not_passed": [c for c in cases if c["outcome"] in ("failed", "error")]}


def autogroup() -> Optional[bool]:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return None


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if (
        "--" in argv) else (argv, DEFAULT_PYTEST)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the suite")
    parser.add_argument("--nice", type=int, default=10, help="their niceness")
    parser.add_argument("--name", default="busy_suite",
                        help="bench/results/NAME.json and NAME.xml (name a subset's run apart)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(ours)
    args.results.mkdir(parents=True, exist_ok=True)
    junit = args.results / f"{args.name}.xml"
    junit.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", *pytest_args, f"--junitxml={junit}"]
    load_before = round(os.getloadavg()[0], 2)
    sampler = LoadSampler()
    busy = burners(args.busy, args.nice)
    sampler.start()
    began = time.monotonic()
    code: Optional[int] = None
    try:
        print(f"busy_suite: {args.busy} busy processes at nice {args.nice} "
              f"(pids {' '.join(str(p.pid) for p in busy)}); running: {' '.join(command)}",
              flush=True)
        code = subprocess.run(command, cwd=REPO).returncode
    finally:
        wall = time.monotonic() - began
        sampler.done.set()
        end(busy)
        sampler.join()
    loads = sampler.samples
    result = {
        "command": command[1:], "pytest_args": pytest_args, "exit_code": code,
        "wall_s": round(wall, 1), "wall": time.strftime("%H:%M:%S", time.gmtime(wall)),
        "busy_processes": args.busy, "busy_nice": args.nice,
        "busy_pids": [proc.pid for proc in busy],
        "runner_nice": os.nice(0), "cpus": os.cpu_count(), "sched_autogroup": autogroup(),
        "load_before": load_before,
        "load": {"min": min(loads), "median": statistics.median(loads), "max": max(loads),
                 "samples_every_s": SAMPLE_S, "samples": loads} if loads else None,
        **junit_summary(junit), "junit_xml": os.path.relpath(junit, REPO),
        "provenance": provenance("cpu")}
    write_result(args.name, result, args.results)
    print(f"busy_suite: exit {code} after {result['wall']} ({result.get('passed')} passed, "
          f"{result.get('failed')} failed, {result.get('error')} errors, "
          f"{result.get('skipped')} skipped; load median "
          f"{result['load']['median'] if loads else '?'}) -> "
          f"{os.path.relpath(args.results / args.name, REPO)}.json",
          flush=True)
    return code if code is not None else 1


if __name__ == "__main__":
    sys.exit(main())
