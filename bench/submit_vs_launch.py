"""A search submitted as a Ray job vs the same search launched locally: what `submit` costs.

    bash .ci/env python bench/submit_vs_launch.py [--repeats 1] [--spec spaces/digits.yaml]

Both arms run the same spec (the offline demo by default: 12 trials of digits) through the real
CLI, each as a new experiment in a temporary directory, interleaved (launch, submit, launch,
...). The cluster is one node started with the shipped recipe (cluster/start-head.sh, Jobs API
on 127.0.0.1, token auth on) with the CPUs a local launch gets, so the difference is what a job
adds: the upload of the code and the spec, the job's start, joining the cluster, streaming the
output back. Reported: wall seconds of each command from its start to its exit, and the
trial-epochs each search spent (ASHA's stops vary with the order results arrive in, so seconds
per trial-epoch is the fairer comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import median, provenance, ratio_line, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_of(home: Path) -> dict:
    return {**os.environ, "HOME": str(home), "RESNET_SEARCH_VENV": str(VENV)}


def spec_in(workdir: Path, source: Path, name: str) -> Path:
    """The spec as a new experiment whose storage and MLflow store live in `workdir`."""
    spec = yaml.safe_load(source.read_text())
    spec.update(name=name, storage_path=str(workdir / "runs"),
                tracking={**spec.get("tracking", {}),
                          "mlflow_uri": f"sqlite:///{workdir / 'mlflow.db'}"})
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def timed_cli(args: list[str], home: Path, cwd: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=cwd,
                          env=env_of(home), capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return seconds


def epochs_of(spec: Path, home: Path, cwd: Path) -> int:
    done = subprocess.run([sys.executable, "-m", "search.cli", "status", str(spec), "--json"],
                          cwd=cwd, env=env_of(home), capture_output=True, text=True,
                          timeout=300)
    return int(json.loads(done.stdout)["experiment"]["epochs_used"])


def start_cluster(home: Path, temp: str, cpus: int) -> str:
    dashboard = free_port()
    done = subprocess.run(
        ["bash", str(REPO / "cluster" / "start-head.sh"), f"--port={free_port()}",
         f"--dashboard-port={dashboard}", f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1",
         f"--temp-dir={temp}", f"--ray-client-server-port={free_port()}",
         f"--dashboard-agent-listen-port={free_port()}",
         f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}"],
        env=env_of(home), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the head did not start:\n{done.stdout}{done.stderr}")
    return f"http://127.0.0.1:{dashboard}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=REPO / "spaces" / "digits.yaml")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="rs-submit-bench-"))
    home = work / "home"  # the head's and the submitter's: they share the token
    home.mkdir()
    temp = tempfile.mkdtemp(prefix="rs-b-")  # short: Ray's socket paths
    runs: dict[str, list[dict]] = {"launch": [], "submit": []}
    loads = [os.getloadavg()[0]]
    try:
        address = start_cluster(home, temp, cpus)
        for n in range(args.repeats):
            for arm in ("launch", "submit"):
                spec = spec_in(work, args.spec, f"bench-{arm}-{n}")
                command = ["launch", str(spec)] if arm == "launch" else [
                    "submit", str(spec), "--address", address]
                # A local launch in its own HOME: its Ray is its own, not the cluster's.
                arm_home = work / f"home-{arm}-{n}" if arm == "launch" else home
                arm_home.mkdir(exist_ok=True)
                seconds = timed_cli(command, arm_home, work)
                epochs = epochs_of(spec, arm_home, work)
                runs[arm].append({"seconds": round(seconds, 2), "trial_epochs": epochs,
                                  "seconds_per_trial_epoch": round(seconds / epochs, 3)})
                loads.append(os.getloadavg()[0])
                print(f"{arm} {n}: {seconds:.1f} s, {epochs} trial-epochs", flush=True)
    finally:
        subprocess.run(["bash", str(REPO / "cluster" / "stop.sh")], env=env_of(home),
                       capture_output=True, text=True, timeout=300)
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    figures = {arm: {"median_seconds": median([r["seconds"] for r in rs]),
                     "median_seconds_per_trial_epoch": median(
                         [r["seconds_per_trial_epoch"] for r in rs]), "runs": rs}
               for arm, rs in runs.items()}
    result = {"spec": str(args.spec.relative_to(REPO) if args.spec.is_relative_to(REPO)
                          else args.spec),
              "cpus": cpus, "repeats": args.repeats, **figures,
              "loadavg_1min": loads, "provenance": provenance("cpu")}
    path = write_result("submit_vs_launch_cpu", result)
    print(ratio_line("submit_vs_launch", figures["submit"]["median_seconds"],
                     figures["launch"]["median_seconds"], unit="s", baseline_name="launch"))
    print(f"written {path}")
    return result


if __name__ == "__main__":
    main()
