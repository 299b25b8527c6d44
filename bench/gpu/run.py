"""Everything the project asks of a GPU machine, in one command of at most 9 minutes.

    python3 bench/gpu/run.py --out "$OUT"                    # on the GPU machine (RUNBOOK.md)
    python bench/gpu/run.py --device cpu --out /tmp/dry      # the dry run (tests/bench)

Steps, in this order, each a process of its own with a time cap (STEPS), so that one failure,
crash or hang costs that step only and the next one runs:

    install      the carried wheels (.whl/, built by bench/gpu/build_carry.py) into --site with
                 pip --no-index --no-deps, then the launch's imports checked with them
    environment  GPU, driver, torch/CUDA/cuDNN versions, CPUs (nvidia-smi, torch)
    cuda_tests   pytest -m cuda over the files that hold cuda tests (on the CPU: collected only)
    throughput   bench/train_throughput.py: ResNet-18 CIFAR stem, bf16 + channels_last, ours
                 eager and compiled against the tutorial pipeline, one alternation
    packing      bench/gpu/packing.py: 1, 4 and 8 trials through Ray's fractional GPUs, then
                 8 as one fused (vmapped) model
    search       bench/gpu/search.py: a 16-trial search through `resnet-search launch`
    profile      bench/gpu/profile_step.py: one trial step under torch.profiler
    data_path    bench/data_path.py: the data path alone (last: only if time is left)

Every figure lands as JSON in --out: `gpu_run_<device>.json` (the summary: each step's status,
seconds and error, the install, the environment, the tests, the headline figures against their
targets), `run.log` (every step's output) and `results/<benchmark>_<device>.json` (one file per
benchmark, the format of bench/results/). At most 8 files, at most two folders down: what the
device tool brings back. A short summary is printed at the end.

`--device cpu` (the dry run) runs the same steps at tiny sizes, packing through a custom Ray
resource instead of GPUs. `--simulate-image FILE` makes every step's processes refuse imports of
distributions that are neither in FILE (the GPU image's packages) nor carried, as the GPU
machine would (a finder on sys.meta_path, through a sitecustomize on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

# The one call of the device tool a GPU session makes (bench/gpu/RUNBOOK.md; the READMEs quote
# it, tests/bench/test_gpu_run.py checks they quote it verbatim).
RUN_COMMAND = 'PYTHONUNBUFFERED=1 python3 bench/gpu/run.py --out "$OUT"'
RUN_CARRY = [".whl"]
RUN_TIMEOUT_S = 600
REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a file: make `bench` importable
    sys.path.insert(0, str(REPO))

from bench.gpu import build_carry  # noqa: E402 (standard library only)

TOTAL_S = 540  # 9 minutes: the device tool allows 10 per command
RESERVE_S = 8  # kept for the summary after the last step
MIN_STEP_S = 10  # a step with less time left than this is skipped, not started


@dataclass(frozen=True)
class Step:
    name: str
    cap_s: int  # its time cap on the GPU (the dry run uses the same caps)
    doc: str
    full: list[str] = field(default_factory=list)  # argv after the script, --size full
    tiny: list[str] = field(default_factory=list)  # argv at --size tiny
    script: Optional[str] = None  # None: done by this file


TINY_NET = ["--depth", "20", "--width", "0.25", "--batch-size", "16", "--images", "256"]
STEPS: list[Step] = [
    Step("install", 40, "carried wheels into --site, then the launch's imports"),
    Step("environment", 15, "GPU, driver, versions"),
    Step("cuda_tests", 100, "pytest -m cuda"),
    Step("throughput", 130, "ResNet-18 bf16 + channels_last: ours, ours compiled, tutorial",
         full=["--depth", "18", "--batch-size", "512", "--steps", "60", "--repeats", "5",
               "--warmup", "1", "--compare-compile"],
         tiny=[*TINY_NET, "--steps", "2", "--repeats", "1", "--warmup", "0", "--workers", "1",
               "--compare-compile", "--threads", "1"],
         script="bench/train_throughput.py"),
    Step("packing", 95, "1, 4 and 8 packed trials through Ray's fractional GPUs",
         full=["--depth", "20", "--batch-size", "128", "--seconds", "10", "--fused"],
         tiny=[*TINY_NET, "--image-size", "16", "--seconds", "1", "--warm-steps", "1",
               "--trials", "1,2,4", "--fused"],
         script="bench/gpu/packing.py"),
    Step("search", 105, "16 trials: launch, Ray Tune + Optuna + ASHA, MLflow",
         full=["--size", "full"], tiny=["--size", "tiny"], script="bench/gpu/search.py"),
    Step("profile", 30, "one trial step under torch.profiler",
         full=["--depth", "18", "--batch-size", "512"],
         tiny=[*TINY_NET, "--image-size", "16", "--warmup", "2", "--steps", "2"],
         script="bench/gpu/profile_step.py"),
    Step("data_path", 20, "the data path alone (only if time is left)",
         full=[], tiny=["--images", "256", "--batch-size", "32", "--repeats", "1", "--warmup",
                        "0", "--workers", "1"],
         script="bench/data_path.py"),
]
# What a launch imports (search/run/driver.py and what it loads): the install step checks these
# import with the carried wheels before any step needs them.
LAUNCH_IMPORTS = ["ray", "ray.tune", "optuna", "mlflow", "pydantic", "typer", "rich", "yaml",
                  "sqlalchemy", "alembic", "upath", "search.cli", "search.run.driver",
                  "search.run.tuner", "search.tracking.mirror", "search.run.memory"]
# The tutorial pipeline's workers and the data path's baseline; PIL comes with torchvision.
BENCH_IMPORTS = ["torch", "torchvision", "PIL", "numpy"]


class Runner:
    """Runs the steps under one deadline and keeps the log and the summary."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out.resolve()
        self.results = self.out / "results"
        self.work: Path = args.work.resolve()
        self.deadline = time.monotonic() + args.budget
        self.started = time.monotonic()
        self.log = open(self.out / "run.log", "a", buffering=1)
        self.summary: dict[str, Any] = {
            "device": args.device, "size": args.size, "budget_s": args.budget,
            "command": " ".join(sys.argv), "steps": []}
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        if args.device == "cpu":  # the dry run shares a small machine: one thread a process
            self.env.setdefault("OMP_NUM_THREADS", "1")
        self.paths: list[str] = [str(REPO)]

    # -- the environment every step gets ---------------------------------------------------

    def step_env(self, name: str) -> dict[str, str]:
        home = self.work / f"home-{name}"
        home.mkdir(parents=True, exist_ok=True)
        return {**self.env, "HOME": str(home), "PYTHONPATH": os.pathsep.join(self.paths)}

    def say(self, text: str) -> None:
        line = f"[gpu-run {time.monotonic() - self.started:5.0f}s] {text}"
        print(line, flush=True)
        self.log.write(line + "\n")

    # -- running one step --------------------------------------------------------------------

    def run(self, step: Step) -> None:
        left = self.deadline - time.monotonic() - RESERVE_S
        record: dict[str, Any] = {"name": step.name, "cap_s": step.cap_s}
        self.summary["steps"].append(record)
        if self.args.only and step.name not in self.args.only:
            record["status"] = "skipped (not in --only)"
            return
        if left < MIN_STEP_S:
            record["status"] = f"skipped: {left:.0f} s left of the {self.args.budget} s budget"
            self.say(f"{step.name}: {record['status']}")
            return
        limit = min(step.cap_s * self.args.cap_scale, left)
        self.say(f"{step.name}: start ({step.doc}; at most {limit:.0f} s)")
        start = time.monotonic()
        try:
            extra = getattr(self, f"step_{step.name}", None)
            if extra is not None:
                record |= extra(step, limit)
            else:
                record |= self.script(step, limit)
        except Exception as error:  # noqa: BLE001 - one step's failure is recorded, never fatal
            record |= {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        record["seconds"] = round(time.monotonic() - start, 1)
        self.say(f"{step.name}: {record['status']} in {record['seconds']} s"
                 + (f" - {record['error'][:300]}" if record.get("error") else ""))
        self.sweep(step.name)

    def command(self, name: str, argv: list[str], limit: float,
                cwd: Path = REPO) -> tuple[Optional[int], str]:
        """(exit code or None on timeout, output) of a command in its own process group."""
        self.log.write(f"\n===== {name}: {' '.join(argv)}\n")
        proc = subprocess.Popen(argv, cwd=cwd, env=self.step_env(name), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=limit)
            code: Optional[int] = proc.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            code = None
        self.log.write(output or "")
        return code, output or ""

    def script(self, step: Step, limit: float) -> dict[str, Any]:
        argv = [sys.executable, str(REPO / step.script),
                *(step.full if self.args.size == "full" else step.tiny)]
        if step.name == "search":
            argv += ["--work", str(self.work / "search"), "--timeout", str(max(10, limit - 10))]
        elif step.name in ("throughput", "packing", "profile", "data_path"):
            argv += ["--device", self.args.device]
        argv += ["--out", str(self.results)]
        code, output = self.command(step.name, argv, limit)
        return outcome(code, output, limit)

    def sweep(self, name: str) -> None:
        """Kill what a step left running (a Ray of a timed-out step): every process whose HOME
        is that step's (tests/e2e/processes.py does the same for the tests)."""
        home = f"HOME={self.work / f'home-{name}'}".encode()
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if int(proc.name) != os.getpid() and home in (proc / "environ").read_bytes() \
                        .split(b"\0"):
                    os.kill(int(proc.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue

    # -- the steps done here -----------------------------------------------------------------

    def step_install(self, step: Step, limit: float) -> dict[str, Any]:
        wheels = sorted(glob.glob(str(self.args.wheels / "*.whl")))
        record: dict[str, Any] = {"wheels": [Path(w).name for w in wheels],
                                  "site": str(self.args.site)}
        if wheels and self.args.wheels.resolve() == build_carry.WHEELS:
            # what build_carry.py built, byte for byte (a stale folder is named, not refused)
            record["manifest_problems"] = build_carry.compare(
                json.loads(build_carry.MANIFEST.read_text()), self.args.wheels)
        if wheels:
            code, output = self.command("install", [
                sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(self.args.site),
                *wheels], limit)
            if code != 0:
                return record | outcome(code, output, limit)
        if self.args.site.is_dir():
            self.paths.insert(0, str(self.args.site))
        if self.args.simulate_image:
            self.paths.insert(0, str(simulate_image(self.args.simulate_image, self.work,
                                                    self.args.carry_list,
                                                    self.args.trace_imports)))
        code, output = self.command("install", [sys.executable, "-c", IMPORT_CHECK,
                                                json.dumps(LAUNCH_IMPORTS + BENCH_IMPORTS)],
                                    max(5.0, limit - 5))
        record |= outcome(code, output, limit)
        try:
            record["imports"] = json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            pass
        if record["status"] == "ok" and record.get("imports", {}).get("failed"):
            record |= {"status": "failed",
                       "error": f"cannot import: {record['imports']['failed']}"}
        return record

    def step_environment(self, step: Step, limit: float) -> dict[str, Any]:
        code, output = self.command("environment", [sys.executable, "-c", ENVIRONMENT], limit)
        record = outcome(code, output, limit)
        try:
            self.summary["environment"] = json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            pass
        return record

    def step_cuda_tests(self, step: Step, limit: float) -> dict[str, Any]:
        junit = self.work / "junit-cuda.xml"
        argv = [sys.executable, "-m", "pytest", "-m", "cuda", *cuda_test_files(), "-q",
                "-p", "no:cacheprovider", f"--junitxml={junit}"]
        if self.args.device == "cpu":  # they need a GPU: the dry run checks they collect
            argv.append("--collect-only")
        code, output = self.command("cuda_tests", argv, limit)
        record = outcome(code, output, limit)
        record["tests"] = junit_counts(junit) if junit.exists() else None
        if self.args.device == "cpu":
            record["collected"] = collected(output)
            record["note"] = "--device cpu: collected, not run (they need a GPU)"
        self.summary["cuda_tests"] = record
        return record

    # -- the end -----------------------------------------------------------------------------

    def finish(self) -> Path:
        self.summary["seconds"] = round(time.monotonic() - self.started, 1)
        self.summary["headline"] = headline(self.results, self.args.device, self.summary)
        path = self.out / f"gpu_run_{self.args.device}.json"
        path.write_text(json.dumps(self.summary, indent=2, default=str) + "\n")
        for line in summary_lines(self.summary):
            self.say(line)
        self.log.close()
        return path


def outcome(code: Optional[int], output: str, limit: float) -> dict[str, Any]:
    if code == 0:
        return {"status": "ok", "exit_code": 0}
    tail = "\n".join(output.strip().splitlines()[-12:])
    if code is None:
        return {"status": "timeout", "exit_code": None,
                "error": f"stopped at its {limit:.0f} s limit; last lines:\n{tail}"}
    return {"status": "failed", "exit_code": code, "error": tail}


IMPORT_CHECK = """
import importlib, json, sys
from importlib import metadata
done, failed = {}, {}
for name in json.loads(sys.argv[1]):
    try:
        module = importlib.import_module(name)
        done[name] = getattr(module, "__version__", None)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
versions = {}
for dist in ("ray", "optuna", "mlflow", "pydantic", "torch", "torchvision", "numpy", "pandas",
             "pyarrow", "sqlalchemy", "protobuf", "grpcio"):
    try:
        versions[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        versions[dist] = None
print(json.dumps({"ok": sorted(done), "failed": failed, "versions": versions,
                  "python": sys.version.split()[0]}))
"""

ENVIRONMENT = """
import json, os, platform, shutil, subprocess, sys
import torch
info = {"python": sys.version.split()[0], "executable": sys.executable,
        "platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda}
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    info |= {"gpu": props.name, "gpu_memory_mib": props.total_memory / 2**20,
             "capability": f"{props.major}.{props.minor}",
             "multiprocessors": props.multi_processor_count,
             "cudnn": torch.backends.cudnn.version(), "device_count": torch.cuda.device_count()}
smi = shutil.which("nvidia-smi")
if smi:
    out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    info["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
print(json.dumps(info))
"""


def cuda_test_files() -> list[str]:
    """The test files that hold cuda tests: only these are collected on the GPU machine, whose
    image lacks what other test files import (psycopg2, playwright, moto, optuna-dashboard)."""
    return sorted(str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("test_*.py")
                  if "mark.cuda" in path.read_text())


def junit_counts(path: Path) -> dict[str, Any]:
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {key: sum(int(s.get(key, 0)) for s in suites)
              for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    problems = []
    for case in root.iter("testcase"):
        for bad in list(case):
            if bad.tag in ("failure", "error", "skipped"):
                problems.append({"test": f"{case.get('classname')}::{case.get('name')}",
                                 "kind": bad.tag, "message": (bad.get("message") or "")[:400]})
    counts["problems"] = problems
    return counts


def collected(output: str) -> Optional[int]:
    for line in reversed(output.splitlines()):
        words = line.split()
        if "collected" in line and words and words[0].split("/")[0].isdigit():
            return int(words[0].split("/")[0])
    return None


def simulate_image(packages: Path, work: Path, carry_list: Path, trace: bool = False) -> Path:
    """A folder with a sitecustomize that refuses imports of distributions neither on the GPU
    image nor carried (names as lines of `packages` and of `carry_list`); every refusal is
    appended to blocked.txt beside it. With `trace`, nothing is refused and every distribution
    imported is appended to imported.txt instead."""
    folder = work / "simulate-image"
    folder.mkdir(parents=True, exist_ok=True)
    allowed = {canonical(line) for path in (packages, carry_list) if path.exists()
               for line in path.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    allowed |= {"resnet-search"}  # this repository, which travels with every command
    (folder / "sitecustomize.py").write_text(
        BLOCKER.replace("ALLOWED_SET", repr(sorted(allowed)))
        .replace("BLOCKED_FILE", repr(str(folder / "blocked.txt")))
        .replace("IMPORTED_FILE", repr(str(folder / "imported.txt")))
        .replace("TRACE_ONLY", repr(trace)))
    return folder


def canonical(line: str) -> str:
    name = line.split("==")[0].split()[0].strip()
    return name.lower().replace("_", "-").replace(".", "-")


BLOCKER = '''"""Written by bench/gpu/run.py --simulate-image: imports as on the GPU machine."""
import importlib.abc, importlib.metadata, sys

_ALLOWED = set(ALLOWED_SET)
_OWNERS = importlib.metadata.packages_distributions()


def _canonical(name):
    return name.lower().replace("_", "-").replace(".", "-")


class _GpuImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if "." in name:
            return None
        owners = _OWNERS.get(name)
        if owners and TRACE_ONLY:
            with open(IMPORTED_FILE, "a") as log:
                log.write(f"{name} {' '.join(owners)}\\n")
            return None
        if not owners or any(_canonical(o) in _ALLOWED for o in owners):
            return None  # the standard library, this repository, or what the image has
        with open(BLOCKED_FILE, "a") as log:
            log.write(f"{name} {' '.join(owners)}\\n")
        raise ModuleNotFoundError(f"No module named {name!r} on the GPU image (distribution "
                                  f"{', '.join(owners)} is neither there nor carried)",
                                  name=name)


sys.meta_path.insert(0, _GpuImage())
'''


def headline(results: Path, device: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, each with its target and whether it is met."""
    def read(name: str) -> Optional[dict]:
        path = results / f"{name}_{device}.json"
        return json.loads(path.read_text()) if path.exists() else None

    found: dict[str, Any] = {}
    tp = read("train_throughput")
    if tp:
        found["throughput"] = {
            "ours_img_per_s": tp["ours_img_per_s"],
            "ours_compiled_img_per_s": tp.get("ours_compiled_img_per_s"),
            "tutorial_img_per_s": tp["tutorial_img_per_s"], "ratio": tp["ratio"],
            "compiled_ratio": tp.get("compiled_ratio"),
            "target": ">= 100k img/s and >= 3x the tutorial (H100)",
            "met": max(tp["ours_img_per_s"], tp.get("ours_compiled_img_per_s") or 0) >= 100_000
            and max(tp["ratio"], tp.get("compiled_ratio") or 0) >= 3}
    pk = read("packing")
    if pk:
        arms = pk.get("arms", {})
        found["packing"] = {
            "aggregate_img_per_s": {k: a.get("aggregate_img_per_s") for k, a in arms.items()},
            "ratios": pk.get("ratios"), "oom": pk.get("oom"),
            "peak_reserved_mib_per_trial": {
                k: [t.get("peak_reserved_mib") for t in a.get("trials", [])]
                for k, a in arms.items()},
            "nvidia_smi_mib_per_trial": {
                k: [t.get("nvidia_smi_mib") for t in a.get("trials", [])]
                for k, a in arms.items()},
            "preflight_per_trial_mib": pk.get("preflight", {}).get("per_trial_mib"),
            "preflight_verdict": pk.get("preflight", {}).get("verdict"),
            "fused_img_per_s": (pk.get("fused") or {}).get("aggregate_img_per_s"),
            "target": "8 trials >= 3x one trial, no OOM",
            "met": bool((pk.get("ratios") or {}).get("8") and pk["ratios"]["8"] >= 3
                        and not pk.get("oom"))}
    sr = read("search16")
    if sr:
        found["search"] = {"exit_code": sr["exit_code"], "seconds": sr["seconds"],
                           "trials_in_mlflow": sr["trials_in_mlflow"],
                           "outcomes": sr["outcomes"], "target": "16 trials, all in MLflow",
                           "met": sr["exit_code"] == 0 and sr["all_trials_in_mlflow"]}
    pr = read("profile")
    if pr:
        found["profile"] = {k: pr[k] for k in ("wall_ms_per_step", "kernel_ms_per_step",
                                               "device_busy_fraction",
                                               "host_queue_ms_per_step", "by_kind_ms_per_step")}
        found["profile"]["top5"] = [(t["name"][:80], round(t["share"] or 0, 3))
                                    for t in pr["top"][:5]]
    tests = (summary.get("cuda_tests") or {}).get("tests")
    if tests and device == "cuda":
        found["cuda_tests"] = {k: tests[k] for k in ("tests", "passed", "failures", "errors",
                                                     "skipped")}
        found["cuda_tests"]["met"] = tests["tests"] > 0 and tests["passed"] == tests["tests"]
    return found


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = ["summary:"]
    for step in summary["steps"]:
        lines.append(f"  {step['name']:<12} {step.get('status', '?'):<10} "
                     f"{step.get('seconds', '')!s:>6} s")
    env = summary.get("environment") or {}
    lines.append(f"  device: {env.get('gpu') or 'no GPU'} (torch {env.get('torch')}, "
                 f"CUDA {env.get('cuda')}, {env.get('cpus')} CPUs)")
    for name, figures in summary.get("headline", {}).items():
        met = figures.get("met")
        shown = {k: v for k, v in figures.items() if k not in ("met", "target")}
        lines.append(f"  {name}: {json.dumps(shown, default=_short)[:400]}"
                     + (f" -> target {figures['target']}: {'MET' if met else 'not met'}"
                        if "target" in figures else ""))
    lines.append(f"  total {summary['seconds']} s of {summary['budget_s']} s")
    return lines


def _short(value: Any) -> str:
    return str(value)


def parse(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where every JSON goes")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--size", choices=["full", "tiny"], default=None,
                        help="default: full on cuda, tiny on cpu")
    parser.add_argument("--wheels", type=Path, default=REPO / ".whl",
                        help="the carried wheels (bench/gpu/build_carry.py)")
    parser.add_argument("--site", type=Path, default=Path("/tmp/site"),
                        help="where the wheels are installed (added to PYTHONPATH)")
    parser.add_argument("--work", type=Path, default=None, help="scratch (default /tmp/gpu-run)")
    parser.add_argument("--budget", type=float, default=TOTAL_S, help="seconds for all steps")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None,
                        help="comma-separated step names (install always runs)")
    parser.add_argument("--install-only", action="store_true",
                        help="install the wheels and stop (a carry split over two commands)")
    parser.add_argument("--simulate-image", type=Path, default=None,
                        help="refuse imports of distributions not in this list nor carried")
    parser.add_argument("--carry-list", type=Path, default=HERE / "carry.txt")
    parser.add_argument("--trace-imports", action="store_true",
                        help="with --simulate-image: log every distribution imported, refuse "
                             "none (how build_carry's list was found)")
    parser.add_argument("--cap-scale", type=float, default=1.0,
                        help="multiply every step's cap (a slow machine's dry run)")
    args = parser.parse_args(argv)
    args.size = args.size or ("full" if args.device == "cuda" else "tiny")
    args.work = args.work or Path("/tmp/gpu-run")
    if args.only:
        args.only |= {"install"}
    if args.install_only:
        args.only = {"install"}
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    runner = Runner(args)
    runner.say(f"{len(STEPS)} steps on {args.device} ({args.size}), {args.budget:.0f} s budget; "
               f"results in {runner.out}")
    for step in STEPS:
        runner.run(step)
    runner.finish()
    return 0 if all(s.get("status") in ("ok", "skipped (not in --only)")
                    for s in runner.summary["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
