"""The GPU run's entry script (bench/gpu/run.py), so that the one GPU command cannot fail on a
typo: a dry run on the CPU at tiny sizes runs every step (the install of a wheel, the cuda tests
collected, throughput with its compiled arm, packing 1/2/4 trials (1/4/8 on the GPU) through
Ray's fractional placement of a custom resource, the 16-trial search through the CLI into MLflow, the profile,
the data path) with every import refused that neither the GPU image nor the carry provides;
what comes back fits what the device tool returns; a step that fails or hangs costs that step
only; the budgets fit the command's limit; the docs quote the one command verbatim."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from bench.gpu import run

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "bench" / "gpu"


def tiny_wheel(folder: Path) -> Path:
    """A wheel standing for the carry (the real one is for CPython 3.12; this machine's pip
    refuses it): one module, installed by the same pip command."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "gpu_carry_probe-1.0-py3-none-any.whl"
    members = {"gpu_carry_probe.py": b"CARRIED = True\n",
               "gpu_carry_probe-1.0.dist-info/METADATA":
                   b"Metadata-Version: 2.1\nName: gpu-carry-probe\nVersion: 1.0\n",
               "gpu_carry_probe-1.0.dist-info/WHEEL":
                   b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                   b"Tag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in [*members, "gpu_carry_probe-1.0.dist-info/RECORD"])
    with zipfile.ZipFile(wheel, "w") as zout:
        for name, data in {**members, "gpu_carry_probe-1.0.dist-info/RECORD":
                           record.encode()}.items():
            zout.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One dry run for the module's assertions (it starts Ray twice and trains 16 trials)."""
    home = tmp_path_factory.mktemp("gpu-dry-run")
    out, work, site = home / "out", home / "work", home / "site"
    tiny_wheel(home / "wheels")
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    # Caps scaled for a loaded 2-core machine: the dry run checks the steps, not their timing.
    result = subprocess.run(
        [sys.executable, str(GPU / "run.py"), "--device", "cpu", "--out", str(out),
         "--work", str(work), "--wheels", str(home / "wheels"), "--site", str(site),
         "--simulate-image", str(GPU / "image-packages.txt"), "--cap-scale", "8",
         "--budget", "3000"], cwd=home, env=env, capture_output=True, text=True, timeout=3300)
    print(f"dry run: {time.perf_counter() - start:.0f} s")
    summary = json.loads((out / "gpu_run_cpu.json").read_text())
    yield result, summary, out, work, site
    from processes import kill_ours  # tests/e2e: by HOME, never `ray stop --force`

    kill_ours(home)
    for step in run.STEPS:
        kill_ours(work / f"home-{step.name}")


def test_every_step_of_the_dry_run_succeeds(dry_run):
    result, summary, *_ = dry_run
    statuses = {s["name"]: s["status"] for s in summary["steps"]}
    assert statuses == {step.name: "ok" for step in run.STEPS}, \
        json.dumps(summary["steps"], indent=1)[-6000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "summary:" in result.stdout and "search: " in result.stdout


def test_imports_were_refused_as_on_the_gpu_image_and_none_was_needed(dry_run):
    _, summary, _, work, site = dry_run
    install = next(s for s in summary["steps"] if s["name"] == "install")
    assert install["wheels"] == ["gpu_carry_probe-1.0-py3-none-any.whl"]
    assert (site / "gpu_carry_probe.py").exists()
    assert install["imports"]["failed"] == {}, install["imports"]
    blocked = (work / "simulate-image" / "blocked.txt").read_text().split()
    # Ray ran without its dashboard's packages, as it will there: the refusal was in force
    assert "aiohttp_cors" in blocked or "colorful" in blocked or "opencensus" in blocked


def test_what_comes_back_fits_the_device_tool(dry_run):
    _, _, out, *_ = dry_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 5 <= len(files) <= 8, files
    for path in files:
        parts = path.relative_to(out).parts
        assert len(parts) <= 3  # $OUT/a/b/file comes back; deeper does not
        assert all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in parts)
        assert path.stat().st_size < 16 * 2**20


def test_each_benchmark_wrote_its_figures(dry_run):
    _, summary, out, *_ = dry_run
    results = out / "results"
    throughput = json.loads((results / "train_throughput_cpu.json").read_text())
    assert throughput["ours_img_per_s"] > 0 and throughput["ours_compiled_img_per_s"] > 0
    assert throughput["tutorial_img_per_s"] > 0
    packing = json.loads((results / "packing_cpu.json").read_text())
    assert "fake_gpu" in packing["placement"]
    assert sorted(packing["arms"], key=int) == ["1", "2", "4"]  # the GPU run: 1, 4, 8
    for k, arm in packing["arms"].items():
        assert len(arm["trials"]) == int(k) and arm["aggregate_img_per_s"] > 0
        assert len({t["pid"] for t in arm["trials"]}) == int(k)  # k processes at once
    assert packing["preflight"]["probe"]["kind"] == "cpu-rss"
    assert packing["fused"]["trials"] == 4 and packing["fused"]["aggregate_img_per_s"] > 0
    search = json.loads((results / "search16_cpu.json").read_text())
    assert search["exit_code"] == 0 and search["trials_in_mlflow"] == 16
    assert search["statuses"] == ["FINISHED"]
    profile = json.loads((results / "profile_cpu.json").read_text())
    assert profile["top"] and profile["by_kind_ms_per_step"]
    assert json.loads((results / "data_path_cpu.json").read_text())["ratio"] > 0
    tests = summary["cuda_tests"]
    assert tests["collected"] and tests["collected"] >= 6  # collected, not run, on the CPU
    assert summary["environment"]["cuda_available"] is False
    assert set(summary["headline"]) >= {"throughput", "packing", "search", "profile"}


def test_a_failing_or_hanging_step_costs_that_step_only(tmp_path):
    hang = tmp_path / "hang.py"
    # Both sleep far past pytest-timeout: a runner that waited for either (the script, or its
    # child holding the output pipe) would hang the test instead of returning.
    hang.write_text("import subprocess, sys, time\n"
                    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
                    "time.sleep(3600)\n")
    args = run.parse(["--device", "cpu", "--out", str(tmp_path / "out"), "--work",
                      str(tmp_path / "work"), "--budget", "120"])
    (tmp_path / "out").mkdir()
    runner = run.Runner(args)
    runner.run(run.Step("broken", 30, "a script that is not there", script="no/such.py"))
    runner.run(run.Step("hangs", 3, "a script that never ends", script=str(hang)))
    runner.run(next(s for s in run.STEPS if s.name == "environment"))
    broken, hangs, environment = runner.summary["steps"]
    assert broken["status"] == "failed" and "no/such.py" in broken["error"]
    assert hangs["status"] == "timeout" and "3 s limit" in hangs["error"]
    assert environment["status"] == "ok" and runner.summary["environment"]["cpus"]
    time.sleep(1)
    home = f"HOME={tmp_path / 'work' / 'home-hangs'}".encode()
    left = [p for p in Path("/proc").glob("[0-9]*")
            if _environ_has(p, home)]
    assert left == []  # the step and the child it started are gone


def _environ_has(proc: Path, entry: bytes) -> bool:
    try:
        return entry in (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def test_a_step_is_skipped_when_the_budget_is_spent(tmp_path):
    args = run.parse(["--device", "cpu", "--out", str(tmp_path), "--work", str(tmp_path / "w"),
                      "--budget", "5"])
    runner = run.Runner(args)
    runner.run(next(s for s in run.STEPS if s.name == "profile"))
    assert runner.summary["steps"][0]["status"].startswith("skipped: ")


def test_the_step_caps_fit_the_command_limit():
    assert sum(step.cap_s for step in run.STEPS) <= run.TOTAL_S <= 9 * 60
    assert run.TOTAL_S + 30 <= run.RUN_TIMEOUT_S <= 600
    assert [s.name for s in run.STEPS][:2] == ["install", "environment"]


@pytest.mark.parametrize("doc", ["bench/README.md", "bench/gpu/RUNBOOK.md", "README.md"])
def test_the_docs_give_the_one_command_verbatim(doc):
    text = (ROOT / doc).read_text()
    assert run.RUN_COMMAND in text
    assert f"timeout_s: {run.RUN_TIMEOUT_S}" in text and '".whl"' in text


def test_the_dry_run_simulation_refuses_what_is_neither_there_nor_carried(tmp_path):
    folder = run.simulate_image(GPU / "image-packages.txt", tmp_path, GPU / "carry.txt")
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}
    refused = subprocess.run([sys.executable, "-c", "import boto3"], env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "on the GPU image" in refused.stderr
    allowed = subprocess.run([sys.executable, "-c", "import yaml, optuna, resnet_core"],
                             env=env, capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stderr
    assert stat.S_ISREG((folder / "sitecustomize.py").stat().st_mode)
