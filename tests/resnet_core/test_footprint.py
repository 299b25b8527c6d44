"""The memory probe the pre-flight runs before packing trials on a GPU, run here on the CPU
through the same command line (`python -m resnet_core.train.footprint`): every config gets an
entry, a config the trainer refuses gets its error and does not stop the others, and a CPU
figure says it is the process's RSS. On a GPU (marked cuda): figures from the caching allocator,
the process's own overhead named with its source, a larger batch needing more, and a config
that cannot fit reported as out of memory without stopping the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_core.config import DataConfig, TrainConfig, resolved

ROOT = Path(__file__).resolve().parents[2]
TINY = TrainConfig(depth=20, width=0.25, batch_size=32, eval_batch_size=64, precise_bn=0)


def run_probe(request: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "resnet_core.train.footprint"],
                         input=json.dumps(request), capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_probe_measures_each_config_and_names_what_it_measured_on_cpu():
    refused = resolved(TrainConfig(depth=20, width=0.25, batch_size=32, optimizer="nesterov",
                                   momentum=0.0))
    result = run_probe({"device": "cpu", "data": resolved(DataConfig(dataset="digits")),
                        "configs": [resolved(TINY), refused,
                                    resolved(TrainConfig(depth=20, width=0.5, batch_size=64,
                                                         eval_batch_size=64))]})
    assert result["kind"] == "cpu-rss" and "RSS" in result["overhead_source"]
    assert result["total_mib"] is None and result["overhead_mib"] == 0.0
    first, second, third = result["configs"]
    assert first["peak_reserved"] > 50  # a process that imported torch holds more than that
    assert "nesterov" in second["error"] and "ValueError" in second["error"]
    assert third["peak_reserved"] >= first["peak_reserved"]  # RSS only grows in a process


def test_the_probe_refuses_cuda_where_there_is_none():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    request = {"device": "cuda", "data": resolved(DataConfig(dataset="digits")),
               "configs": [resolved(TINY)]}
    out = subprocess.run([sys.executable, "-m", "resnet_core.train.footprint"],
                         input=json.dumps(request), capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert out.returncode != 0 and "torch sees no CUDA device" in out.stderr


@pytest.mark.cuda
def test_the_probe_measures_on_the_gpu_and_a_larger_batch_needs_more():
    small = TrainConfig(depth=18, batch_size=64, eval_batch_size=64)
    large = TrainConfig(depth=18, batch_size=1024, eval_batch_size=1024)
    huge = TrainConfig(depth=18, width=8.0, batch_size=65536, eval_batch_size=1024)
    # 72,000 training images: one batch of 65,536 exists (a smaller split has no full batch)
    data = DataConfig(dataset="synthetic", synthetic_size=80_000)
    result = run_probe({"device": "cuda", "data": resolved(data),
                        "configs": [resolved(small), resolved(large), resolved(huge)]})
    assert result["kind"] == "cuda" and result["total_mib"] > 10_000
    assert 0 < result["overhead_mib"] < 8_000 and result["overhead_source"]
    first, second, third = result["configs"]
    assert 0 < first["peak_allocated"] <= first["peak_reserved"] < second["peak_reserved"]
    assert second["peak_reserved"] < result["total_mib"]
    assert "OutOfMemoryError" in third["error"]
