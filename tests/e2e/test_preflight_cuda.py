"""The memory pre-flight on a GPU, through the real CLI: eight packed trials that cannot share
the card are refused before Ray starts (exit 2, trial.resources.gpu, the measured numbers and
how many would fit); packed trials that fit pass, saying what they need."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.cuda

HEAVY = {"depth": 18, "width": 2.0, "batch_size": 2048, "eval_batch_size": 1024}
LIGHT = {"depth": 20, "width": 0.5, "batch_size": 128, "eval_batch_size": 512}


def gpu_spec(digits_spec, gpu: float, fixed: dict) -> dict:
    spec = digits_spec(data={"dataset": "synthetic", "synthetic_size": 4096},
                       trial={"resources": {"cpu": 1, "gpu": gpu}})
    spec["fixed"] = {**spec["fixed"], **fixed}
    return spec


def test_eight_heavy_trials_on_one_gpu_are_refused_with_the_numbers(tmp_path, write_spec,
                                                                      digits_spec, cli):
    spec = gpu_spec(digits_spec, 0.125, HEAVY)
    result = cli("validate", str(write_spec(spec)), "--preflight", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert ": trial.resources.gpu: is 0.125, which packs 8 trials" in result.stderr
    assert "MiB reserved by PyTorch" in result.stderr and "room for" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".ray").exists()


def test_packed_trials_that_fit_pass_and_say_what_they_need(tmp_path, write_spec, digits_spec,
                                                            cli):
    spec = gpu_spec(digits_spec, 0.25, LIGHT)
    result = cli("validate", str(write_spec(spec)), "--preflight", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pre-flight: a trial needs up to" in result.stdout and "4 are packed" in result.stdout
