"""What reading the digits costs a fresh process: the driver's pre-flight and every trial's worker
each start by loading their data, so this is paid once per launch and once per trial.

    python bench/data_start.py [--repeats 7]

"ours": `load_data(digits)` as the product does it now (the digits table read from
scikit-learn's file without importing scikit-learn; torchvision imported only by the readers
that need it, resnet_core/data/sources.py). "baseline": the same call in a process that first
does what the reader did before: `import torchvision` and `sklearn.datasets.load_digits()`.
Each runs in a fresh interpreter, interleaved after one warm-up round; medians of wall and CPU
seconds (user + system of the child) are written to bench/results/data_start.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import median, provenance, write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LOAD = ("from resnet_core.data import load_data; from resnet_core.config import DataConfig; "
        "load_data(DataConfig(dataset='digits'))")
CODE = {
    "ours": LOAD,
    "baseline": "import torchvision; from sklearn.datasets import load_digits; load_digits(); "
                + LOAD,
}


def once(code: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `python -c code` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for code in CODE.values():  # warm-up: bytecode caches, the page cache
        once(code)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in CODE}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for name, code in CODE.items():
            runs[name].append(once(code))
    load.append(os.getloadavg()[0])
    summary = {name: {"wall_s": round(median([w for w, _ in got]), 3),
                      "cpu_s": round(median([c for _, c in got]), 3)} for name, got in runs.items()}
    saved = round(summary["baseline"]["cpu_s"] - summary["ours"]["cpu_s"], 3)
    write_result("data_start", {"repeats": args.repeats, "load_1min": load, **summary,
                                "cpu_s_saved_per_process": saved, "provenance": provenance()})
    for name, got in summary.items():
        print(f"{name:9s} wall {got['wall_s']:.2f} s  cpu {got['cpu_s']:.2f} s")
    print(f"data_start: {saved:.2f} s of CPU saved per process that loads the digits "
          f"(load {load[0]:.1f} -> {load[1]:.1f})")


if __name__ == "__main__":
    main()
