"""The GPU a local launch asks for, checked before Ray starts: the machine has it, and packed
trials fit in its memory.

Ray schedules fractional GPUs by count alone: with `trial.resources.gpu: 0.125` it starts eight
trials on a card whatever their memory. If they do not fit, one of them runs out of memory in
the middle of the search, and which one depends on what its neighbours allocated at that moment:
the search then records OOM against a config that fits on its own. So before launch, the
heaviest configs the space can produce are trained for a few steps on the GPU in a separate
process (`resnet_core.train.footprint`, the Trainer a trial builds), and a fraction whose trials
cannot all fit is refused (exit 2) with the numbers. A whole GPU per trial (`gpu: 1`) is not
measured: a config that does not fit a card alone fails as its own OOM outcome, which is the
truth about that config.

The rules (`device_problem`, `packing_problem`) are pure; `problems` measures and applies them.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from typing import Callable, Optional

from resnet_core.config import DataConfig, TrainConfig, resolved
from search.run.errors import LaunchError
from search.spec import points
from search.spec.job import TrialJob
from search.spec.model import SearchSpec
from search.spec.problems import Problem

FIELD = "trial.resources.gpu"
# Measured peaks vary a little from run to run (allocator fragmentation, cuDNN's algorithm
# choice, a mixup batch): the trials of a card must fit with this much to spare.
MARGIN = 0.10
# Fields whose larger value never needs less memory: probed at their largest.
LARGEST = ("batch_size", "eval_batch_size", "width", "dynamic_kernels")
# Fields that shape the network or its arithmetic with no order by memory: every combination of
# their values in the space is probed, up to MAX_PROBES; beyond it each value once.
SHAPES = ("depth", "block", "stem", "shortcut", "residual", "precision", "channels_last")
MAX_PROBES = 48
PROBE_TIMEOUT_S = 600  # a limit kept: a GPU stuck in a driver call never ends (minutes for 48)


def device_problem(gpu: float, device_count: int) -> Optional[str]:
    """Why a local launch cannot give each trial `gpu` GPUs on this machine, or None."""
    if gpu == 0:
        return None
    if device_count == 0:
        return (f"is {gpu:g} but this machine has no GPUs that torch can use "
                "(torch.cuda.device_count() is 0), and a launch without --address runs its "
                "trials here; use gpu: 0, or --address a Ray cluster with GPUs")
    if gpu > device_count:
        return (f"is {gpu:g} but this machine has only {device_count} GPU(s); use at most "
                f"gpu: {device_count}, or --address a Ray cluster with larger nodes")
    return None


def fraction_for(trials_per_gpu: int) -> float:
    """The `gpu` value that packs this many trials per card, as the spec's 1/k rule accepts it
    (rounded down, so k copies never add up to more than one card)."""
    return math.floor(10**4 / trials_per_gpu) / 10**4


def packing_problem(gpu: float, per_trial_mib: float, card_mib: float, card: str,
                    detail: str) -> Optional[str]:
    """Why round(1/gpu) trials of `per_trial_mib` each cannot share a card of `card_mib`, or
    None. `detail` says what was measured, for the message."""
    if not 0 < gpu < 1:
        return None
    packed = round(1 / gpu)
    fit = math.floor(card_mib / (per_trial_mib * (1 + MARGIN)))
    if packed <= fit:
        return None
    head = (f"is {gpu:g}, which packs {packed} trials on each GPU, but a trial needs up to "
            f"{per_trial_mib:,.0f} MiB ({detail}) and the {card} has {card_mib:,.0f} MiB")
    if fit == 0:
        return (f"{head}: not even one such trial fits with a {MARGIN:.0%} margin; lower "
                "batch_size or width in the space, or use a larger GPU")
    return (f"{head}: room for {fit} such trial(s) with a {MARGIN:.0%} margin; use gpu: "
            f"{fraction_for(fit):g} ({fit} per GPU), or lower batch_size or width")


def candidates(spec: SearchSpec, job: TrialJob) -> list[TrainConfig]:
    """The configs whose peak bounds every trial's: LARGEST at their largest, and every
    combination of SHAPES values (each value once when that would be more than MAX_PROBES).
    Combinations the trainer refuses are left out (the pre-flight's `trials` check names
    those that a trial could really sample)."""
    space = spec.space
    base = next((point for _, _, point in points.covering_points(space)), {})
    largest = {name: max(points.extremes(space[name])) for name in LARGEST if name in space}
    shapes = {name: points.extremes(space[name]) for name in SHAPES if name in space}
    combos = [dict(zip(shapes, values)) for values in itertools.product(*shapes.values())]
    if len(combos) > MAX_PROBES:
        combos = [{name: value} for name, values in shapes.items() for value in values]
    found, seen = [], set()
    for combo in combos or [{}]:
        try:
            cfg = job.train_config({**base, **combo, **largest})
        except ValueError:
            continue
        key = json.dumps(resolved(cfg), sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            found.append(cfg)
    return found


Measure = Callable[[DataConfig, list[TrainConfig]], dict]


def measure(data: DataConfig, configs: list[TrainConfig], device: str = "cuda") -> dict:
    """Run the footprint probe in a process of its own on the GPU (the driver keeps no CUDA
    context, and the probe's memory is gone before the trials start)."""
    request = {"device": device, "data": resolved(data),
               "configs": [resolved(cfg) for cfg in configs]}
    try:
        out = subprocess.run([sys.executable, "-m", "resnet_core.train.footprint"],
                             input=json.dumps(request), capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LaunchError(f"the memory pre-flight of {FIELD} did not finish in "
                          f"{PROBE_TIMEOUT_S} s ({len(configs)} configs; a GPU busy with other "
                          "work, or a probe that hangs); nothing was run: launch again once the "
                          f"GPU is free, or set {FIELD} to a whole GPU per trial (not checked)"
                          ) from None
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-5:])
        raise LaunchError(f"the memory pre-flight of {FIELD} failed (exit {out.returncode}) "
                          f"measuring {len(configs)} config(s):\n{tail}")
    return json.loads(out.stdout)


def describe(cfg: TrainConfig) -> str:
    """The config's memory-relevant fields, for a message."""
    fields = resolved(cfg)
    return ", ".join(f"{name}={fields[name]}" for name in (*SHAPES, *LARGEST) if name in fields)


def packing_problems(spec: SearchSpec, job: TrialJob, say: Callable[[str], None],
                     measure: Measure = measure) -> list[Problem]:
    """Measure the heaviest configs on the GPU and apply `packing_problem` to the worst."""
    gpu = spec.trial.resources.gpu
    if not 0 < gpu < 1:
        return []
    configs = candidates(spec, job)
    if not configs:
        return []
    say(f"pre-flight: measuring the peak GPU memory of {len(configs)} trial config(s) "
        f"({FIELD} is {gpu:g}, {round(1 / gpu)} trials per GPU)")
    result = measure(job.data, configs)
    card, card_mib, overhead = result["device_name"], result["total_mib"], result["overhead_mib"]
    measured = list(zip(result["configs"], configs))
    out_of_memory = [cfg for entry, cfg in measured
                     if "OutOfMemoryError" in entry.get("error", "")]
    if out_of_memory:
        return [Problem(FIELD, gpu, f"is {gpu:g}, but a trial of {describe(out_of_memory[0])} "
                                    f"runs out of memory even alone on the {card} "
                                    f"({card_mib:,.0f} MiB); lower batch_size or width")]
    peaks = [(entry["peak_reserved"] + overhead, entry, cfg) for entry, cfg in measured
             if "peak_reserved" in entry]
    if not peaks:
        return []  # the trainer refused every combination: the `trials` check names why
    need, entry, cfg = max(peaks, key=lambda found: found[0])
    detail = (f"{entry['peak_reserved']:,.0f} MiB reserved by PyTorch at the peak of a probe "
              f"step of {describe(cfg)}, + {overhead:,.0f} MiB for the process "
              f"({result['overhead_source']})")
    problem = packing_problem(gpu, need, card_mib, card, detail)
    if problem:
        return [Problem(FIELD, gpu, problem)]
    fit = math.floor(card_mib / (need * (1 + MARGIN)))
    say(f"pre-flight: a trial needs up to {need:,.0f} MiB; the {card} ({card_mib:,.0f} MiB) "
        f"holds {fit} with a {MARGIN:.0%} margin, {round(1 / gpu)} are packed")
    return []


def device_count() -> int:
    import torch

    return torch.cuda.device_count()


def problems(spec: SearchSpec, job: TrialJob, say: Callable[[str], None],
             count: Callable[[], int] = device_count, measure: Measure = measure,
             measure_memory: bool = True) -> list[Problem]:
    """The GPU problems of a local launch: the GPUs exist, then (only when they do and
    `measure_memory`) the packed trials fit."""
    gpu = spec.trial.resources.gpu
    if gpu == 0:
        return []
    reason = device_problem(gpu, count())
    if reason:
        return [Problem(FIELD, gpu, reason)]
    return packing_problems(spec, job, say, measure) if measure_memory else []


def no_say(text: str) -> None:
    pass
