"""Shared helpers for benchmarks: provenance, fair timing, one JSON result, one ratio line.

Benchmarks are scripts, never tests. Machines are shared and noisy (shared/PERFORMANCE.md), so
every benchmark measures ours and its baseline in the same run, alternating after warm-up, and
quotes medians and their ratio. Typical use:

    from bench.common import alternate, provenance, ratio_line, write_result

    times = alternate({"ours": run_ours, "baseline": run_base}, repeats=5, warmup=1,
                      device="cuda")
    ours, base = work / median(times["ours"]), work / median(times["baseline"])
    write_result("my_bench", {"ours_per_s": ours, "baseline_per_s": base,
                              "provenance": provenance("cuda")})
    print(ratio_line("my_bench", ours, base, unit="img/s", baseline_name="tutorial", target=3))

Only the standard library, torch and (optionally) torchvision are imported, with
resnet_core.provenance (standard library only: the facts every record of a result shares), so
it runs on a GPU box that has nothing else installed; torch only when a benchmark loaded it or
names a device (bench/replay.py measures searches without torch and stays without it).
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from resnet_core import provenance as facts

if TYPE_CHECKING:
    import torch

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def provenance(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Where and with what a number was measured: code version, packages, hardware (the facts
    from resnet_core.provenance, the one place that reads them)."""
    loaded = "torch" in sys.modules or str(device) != "cpu"
    info: dict[str, Any] = {
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": facts.code_version(),
        **facts.machine(),  # python, platform, machine, cpu, cpu_count
        "torch_threads": _torch().get_num_threads() if loaded else None,  # None: not loaded
        **facts.versions(("torch", "torchvision", "numpy")),
        "device": str(device),
    }
    torch = _torch() if loaded else None
    if torch is not None and torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(torch.device(device))
        info |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                 "gpu_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                 "cudnn": torch.backends.cudnn.version()}
    return info


def _torch() -> Any:
    import torch

    return torch


def sync(device: str | torch.device) -> None:
    """Wait for queued device work, so that a clock read measures it."""
    torch = _torch()
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: str | torch.device = "cpu") -> float:
    """Seconds one call of `fn` takes, device work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def alternate(fns: dict[str, Callable[[], Any]], *, repeats: int, warmup: int = 1,
              device: str | torch.device = "cpu") -> dict[str, list[float]]:
    """Seconds per call of each function, calls interleaved (a, b, a, b, ...) so that a noisy
    neighbour slows all of them alike. `warmup` rounds are run first and not recorded."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats is {repeats} and warmup is {warmup} but must be >= 1 and >= 0")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return times


def pyplot() -> Any:
    """matplotlib's pyplot, drawing to files (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panels(count: int, width: float, height: float = 4) -> tuple[Any, Any, list]:
    """(pyplot, a figure, its row of `count` axes), each panel `width` inches wide."""
    plt = pyplot()
    figure, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return plt, figure, list(axes[0])


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_result(name: str, payload: dict[str, Any], results: Path = RESULTS) -> Path:
    """Write bench/results/<name>.json (provenance is added when the payload lacks it)."""
    payload = {"benchmark": name, **payload}
    payload.setdefault("provenance", provenance())
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(dumps(payload) + "\n")
    return path


def dumps(value: Any, indent: int = 0) -> str:
    """JSON indented by 2 as `json.dumps(indent=2)` writes it, except that a list of scalars
    stays on one line: a replay's per-seed figures and curves were one number per line, which
    made its results several times larger (the working tree travels to the GPU machine with
    the carried wheels, within 64 MiB: tests/bench/test_carry.py)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)) and value:
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return json.dumps(list(value), default=str)
        return "[\n" + ",\n".join(f"{inner}{dumps(v, indent + 2)}" for v in value) + \
            f"\n{pad}]"
    return json.dumps(value, default=str)


def ratio_line(name: str, ours: float, baseline: float, *, unit: str,
               baseline_name: str = "baseline", target: float | None = None) -> str:
    """'<name>: ours X <unit> vs <baseline_name> Y <unit> -> ratio Z (target >= Tx)'."""
    ratio = ours / baseline if baseline > 0 else float("inf")
    line = (f"{name}: ours {ours:.4g} {unit} vs {baseline_name} {baseline:.4g} {unit} "
            f"-> ratio {ratio:.3g}")
    return line + (f" (target >= {target:g}x)" if target is not None else "")
