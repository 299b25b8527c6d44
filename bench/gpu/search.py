"""A 16-trial search end to end through the real CLI: `resnet-search launch` (Ray Tune + Optuna
TPE + ASHA; on the GPU its trials packed 8 per card with `trial.resources.gpu: 0.125`, after the
memory pre-flight), MLflow to a local SQLite file; then every trial is looked up in MLflow.

Synthetic CIFAR-shaped data (random labels: the figures are of the machinery, not of learning).
`--size tiny` is the CPU dry run's: 16 one-epoch trials of a quarter-width ResNet-20 on 256
images of 16x16, no GPU.

    python bench/gpu/search.py --size full --out bench/results --work /tmp/search16

Writes <out>/search16_<device>.json: the launch's exit code and seconds, its last output lines,
the trials MLflow holds (status, outcome, epochs, peak memory, images/s) and whether all 16 are
there. The launch runs with HOME=<work> (Ray's session and token stay there).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import RESULTS, REPO, provenance, write_result

TRIALS = 16
NAME = "gpu-search16"


def spec(size: str, work: Path) -> dict[str, Any]:
    """The search of each size (full: one GPU; tiny: the CPU dry run)."""
    full = size == "full"
    return {
        "name": NAME,
        "data": {"dataset": "synthetic", "synthetic_size": 20_000 if full else 256,
                 "image_size": 32 if full else 16, "val_fraction": 0.1},
        "objective": {"metric": "val_acc", "mode": "max"},
        "budget": {"trials": TRIALS, "max_epochs": 4 if full else 1},
        "trial": {"resources": {"cpu": 1, "gpu": 0.125 if full else 0}, "max_failures": 1},
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 8},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "fixed": {"depth": 20, "batch_size": 256 if full else 32, "optimizer": "nesterov",
                  "schedule": "onecycle", "eval_batch_size": 1024 if full else 64,
                  "precise_bn": 1024 if full else 0, "tta": False,
                  **({} if full else {"width": 0.25})},
        "space": {
            "lr": {"float": [0.01, 0.5], "log": True},
            "weight_decay": {"float": [1e-5, 1e-3], "log": True},
            "residual": {"choice": ["add", "scaled"]},
            "augment": {"float": [0.0, 1.0]},
            **({"width": {"choice": [0.5, 1.0]}} if full else {}),
        },
        "tracking": {"mlflow_uri": f"sqlite:///{work / 'mlflow.db'}"},
        "storage_path": str(work / "runs"),
    }


def trials_in_mlflow(uri: str) -> list[dict[str, Any]]:
    from mlflow.tracking import MlflowClient

    from search.tracking.store import PARENT_TAG

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(NAME)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    found = []
    for run in runs:
        if PARENT_TAG not in run.data.tags:
            continue
        metrics, tags = run.data.metrics, run.data.tags
        found.append({"name": run.info.run_name, "status": run.info.status,
                      "outcome": tags.get("outcome"), "epochs": metrics.get("epoch"),
                      "val_acc": metrics.get("val_acc"),
                      "peak_mem_mb": metrics.get("peak_mem_mb"),
                      "images_per_s": metrics.get("images_per_s")})
    return sorted(found, key=lambda t: t["name"] or "")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="full", choices=["full", "tiny"])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (emptied)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import yaml

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    the_spec = spec(args.size, work)
    path = work / "spec.yaml"
    path.write_text(yaml.safe_dump(the_spec, sort_keys=False))
    # The store first: creating a fresh SQLite store's schema (MLflow's migrations) took more
    # than the launch's 10 s tracking probe on a loaded 2-core machine.
    from mlflow.tracking import MlflowClient

    MlflowClient(the_spec["tracking"]["mlflow_uri"]).search_experiments()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(work),
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"),
                                                       str(REPO)]))}
    start = time.perf_counter()
    try:
        run = subprocess.run([sys.executable, "-m", "search.cli", "launch", str(path)],
                             cwd=work, env=env, capture_output=True, text=True,
                             timeout=args.timeout)
        code, output = run.returncode, run.stdout + run.stderr
    except subprocess.TimeoutExpired as expired:
        code = None
        output = ((expired.stdout or b"").decode(errors="replace") if isinstance(
            expired.stdout, bytes) else expired.stdout or "") + "\n(timed out)"
    seconds = time.perf_counter() - start
    (work / "launch.out").write_text(output)
    trials = trials_in_mlflow(the_spec["tracking"]["mlflow_uri"])
    device = "cuda" if the_spec["trial"]["resources"]["gpu"] else "cpu"
    result = {
        "spec": the_spec, "exit_code": code, "seconds": seconds,
        "output_tail": output.strip().splitlines()[-25:],
        "preflight_lines": [line for line in output.splitlines() if "pre-flight" in line],
        "trials_in_mlflow": len(trials), "trials_expected": TRIALS,
        "all_trials_in_mlflow": len(trials) == TRIALS,
        "statuses": sorted({t["status"] for t in trials}),
        "outcomes": dict(sorted(Counter(str(t["outcome"]) for t in trials).items())),
        "trials": trials,
        "provenance": provenance(),
    }
    out = write_result(f"search16_{device}", result, args.out)
    print(f"search16: exit {code} in {seconds:.0f} s, {len(trials)}/{TRIALS} trials in MLflow "
          f"({result['outcomes']})")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    found = main()
    sys.exit(0 if found["exit_code"] == 0 and found["all_trials_in_mlflow"] else 1)
