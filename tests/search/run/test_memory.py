"""The GPU rules of the pre-flight: the machine has the GPUs a local launch asks for, and trials
packed on a GPU fit in its memory. The rules are pure and table-tested; the measurement needs a
GPU, so here it is replaced by recorded probe results (tests/search/run/test_memory_cuda.py
measures for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.run import memory
from search.spec.model import gpu_problem, load_spec, parse_spec

BASE = {"name": "mem", "data": {"dataset": "digits"}, "budget": {"trials": 2, "max_epochs": 1},
        "space": {"lr": {"float": [0.01, 0.1], "log": True}}}
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("gpu, count, says", [
    (0, 0, None),
    (0.5, 0, "has no GPUs that torch can use"),
    (1, 0, "has no GPUs that torch can use"),
    (0.125, 1, None),
    (1, 1, None),
    (2, 1, "has only 1 GPU(s)"),
    (2, 2, None),
])
def test_a_local_launch_needs_the_gpus_it_asks_for(gpu, count, says):
    reason = memory.device_problem(gpu, count)
    assert (reason is None) == (says is None)
    if says:
        assert says in reason and f"is {gpu:g}" in reason


H100 = 81_559.0


@pytest.mark.parametrize("gpu, per_trial, card, fits_room", [
    (1, 90_000, H100, None),  # a whole card is not packing: an OOM is that config's own
    (2, 90_000, H100, None),
    (0.5, 30_000, H100, None),  # 2 x 30 GB x 1.1 = 66 GB
    (0.5, 40_000, H100, 1),  # 2 x 44 GB does not fit; one does
    (0.125, 9_000, H100, None),  # 8 x 9.9 GB = 79.2 GB
    (0.125, 9_500, H100, 7),  # 8 x 10.45 GB > 81.5 GB; 7 fit
    (0.25, 5_000, 16_000, 2),  # a 16 GB card holds 2 trials of 5.5 GB
    (0.25, 20_000, 16_000, 0),  # not even one
])
def test_packed_trials_must_fit_the_card(gpu, per_trial, card, fits_room):
    reason = memory.packing_problem(gpu, per_trial, card, "NVIDIA H100", "measured")
    if fits_room is None:
        assert reason is None
        return
    assert f"packs {round(1 / gpu)} trials" in reason and f"{per_trial:,.0f} MiB" in reason
    assert f"{card:,.0f} MiB" in reason and "(measured)" in reason
    if fits_room == 0:
        assert "not even one" in reason
    else:
        assert f"room for {fits_room} such" in reason
        suggested = memory.fraction_for(fits_room)
        assert f"gpu: {suggested:g} ({fits_room} per GPU)" in reason
        assert memory.packing_problem(suggested, per_trial, card, "x", "y") is None


@pytest.mark.parametrize("k", range(1, 65))
def test_the_suggested_fraction_is_one_the_spec_accepts_and_packs_k(k):
    fraction = memory.fraction_for(k)
    assert gpu_problem(fraction) is None
    assert (round(1 / fraction) if fraction < 1 else 1) == k
    assert k * fraction <= 1


def spec_with(space: dict, fixed: dict | None = None, gpu: float = 0.25):
    return parse_spec({**BASE, "space": space, "fixed": fixed or {},
                       "trial": {"resources": {"cpu": 1, "gpu": gpu}}})


def test_candidates_take_the_largest_sizes_and_every_shape_combination():
    spec = spec_with({"depth": {"choice": [20, 18]}, "block": {"choice": ["basic", "preact"]},
                      "width": {"choice": [0.5, 2.0]}, "batch_size": {"int": [32, 256]},
                      "lr": {"float": [0.01, 0.1], "log": True}}, {"eval_batch_size": 512})
    found = memory.candidates(spec, spec.job())
    assert {(c.depth, c.block) for c in found} == {(20, "basic"), (20, "preact"), (18, "basic"),
                                                   (18, "preact")}
    assert {(c.width, c.batch_size, c.eval_batch_size) for c in found} == {(2.0, 256, 512)}


def test_too_many_combinations_probe_each_value_once():
    depths, blocks = [20, 32, 44, 56, 110, 18, 34], ["basic", "preact", "bottleneck"]
    residuals = ["add", "scaled", "normalized"]
    assert len(depths) * len(blocks) * len(residuals) > memory.MAX_PROBES
    spec = spec_with({"depth": {"choice": depths}, "block": {"choice": blocks},
                      "residual": {"choice": residuals}})
    found = memory.candidates(spec, spec.job())
    assert len(found) <= len(depths) + len(blocks) + len(residuals)
    assert {c.depth for c in found} == set(depths) and {c.block for c in found} == set(blocks)


def test_the_shipped_cifar_space_is_probed_in_every_shape_combination():
    spec = load_spec(ROOT / "spaces" / "cifar.yaml")
    found = memory.candidates(spec, spec.job())
    assert len(found) == 3 * 4 * 4  # depth x block x residual, width at 2.0
    assert {c.width for c in found} == {2.0} and {c.batch_size for c in found} == {512}


def recorded(peaks: list, overhead: float = 500.0, total: float = H100) -> memory.Measure:
    """A probe's answer as the GPU gives it (resnet_core.train.footprint's JSON)."""
    def measure(data, configs):
        assert len(configs) == len(peaks)
        return {"device": "cuda", "kind": "cuda", "device_name": "NVIDIA H100 80GB HBM3",
                "total_mib": total, "overhead_mib": overhead,
                "overhead_source": "nvidia-smi (this process)",
                "configs": [p if isinstance(p, dict) else {"peak_reserved": p,
                                                            "peak_allocated": p * 0.9}
                            for p in peaks]}

    return measure


TWO_DEPTHS = {"depth": {"choice": [20, 18]}, "lr": {"float": [0.01, 0.1], "log": True}}


def test_the_heaviest_measured_config_decides_and_the_numbers_are_named():
    spec = spec_with(TWO_DEPTHS, gpu=0.125)
    said: list[str] = []
    found = memory.packing_problems(spec, spec.job(), said.append,
                                    recorded([1_000.0, 9_500.0]))
    assert [p.loc for p in found] == ["trial.resources.gpu"]
    message = found[0].message
    assert "packs 8 trials" in message and "10,000 MiB" in message  # 9,500 + 500 overhead
    assert "9,500 MiB reserved by PyTorch" in message and "depth=18" in message
    assert "NVIDIA H100 80GB HBM3 has 81,559 MiB" in message and "room for 7" in message
    assert said and "measuring the peak GPU memory of 2 trial config(s)" in said[0]


def test_trials_that_fit_pass_and_say_how_many_would():
    spec = spec_with(TWO_DEPTHS, gpu=0.25)
    said: list[str] = []
    assert memory.packing_problems(spec, spec.job(), said.append,
                                   recorded([1_000.0, 9_500.0])) == []
    assert "a trial needs up to 10,000 MiB" in said[-1] and "holds 7" in said[-1]


def test_a_config_out_of_memory_alone_is_refused_by_name():
    spec = spec_with(TWO_DEPTHS, gpu=0.5)
    oom = {"error": "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB"}
    found = memory.packing_problems(spec, spec.job(), memory.no_say, recorded([1_000.0, oom]))
    assert len(found) == 1 and "runs out of memory even alone" in found[0].message
    assert "depth=18" in found[0].message


def test_whole_gpus_and_cpu_trials_are_not_measured():
    def never(data, configs):
        raise AssertionError("measured")

    for gpu in (0, 1, 2):
        spec = spec_with(TWO_DEPTHS, gpu=gpu)
        assert memory.problems(spec, spec.job(), memory.no_say, count=lambda: 2,
                               measure=never) == []


def test_no_gpu_here_is_said_before_anything_is_measured():
    def never(data, configs):
        raise AssertionError("measured")

    spec = spec_with(TWO_DEPTHS, gpu=0.25)
    found = memory.problems(spec, spec.job(), memory.no_say, count=lambda: 0, measure=never)
    assert [p.loc for p in found] == ["trial.resources.gpu"]
    assert "no GPUs that torch can use" in found[0].message
