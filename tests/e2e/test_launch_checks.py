"""What `launch` refuses before any training starts."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_missing_cifar_files_fail_at_launch_naming_where_to_put_them(tmp_path, write_spec,
                                                                     digits_spec, cli):
    spec = digits_spec(data={"dataset": "cifar10", "root": str(tmp_path / "data"),
                             "download": False})
    result = cli("launch", str(write_spec(spec)), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "data.root" in result.stderr and "cifar-10-batches-py" in result.stderr
    # the archive to fetch, where to extract it, and the switch this spec has off
    assert "cifar-10-python.tar.gz" in result.stderr and str(tmp_path / "data") in result.stderr
    assert "set data.download: true" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs" / "e2e-digits").exists()  # nothing was scheduled


def test_gpu_trials_on_a_cluster_without_gpus_are_refused(tmp_path, write_spec, digits_spec,
                                                          cli):
    spec = digits_spec(trial={"resources": {"cpu": 1, "gpu": 0.5}})
    result = cli("launch", str(write_spec(spec)), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "trial.resources.gpu" in result.stderr and "no GPUs" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_ray_that_does_not_start_in_time_is_one_line_saying_what_was_slow(
        tmp_path, write_spec, digits_spec, cli, reaper, monkeypatch):
    # A deadline no start can meet: Ray's own setting, as a busy machine trips a real one.
    monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", "0")
    result = cli("launch", str(write_spec(digits_spec())), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("cannot launch")]
    assert "Ray's GCS server did not publish its port in time" in line
    assert "launch again, or give Ray longer with RAY_gcs_server_port_wait_time_s=SECONDS" in line
    assert not (tmp_path / "runs" / "e2e-digits").exists()  # nothing was scheduled


ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.name for p in (ROOT / "spaces").glob("*.yaml"))


def test_the_shipped_spaces_are_found():
    assert {"digits.yaml", "digits-wide.yaml", "cifar.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_space_validates(name, cli, tmp_path):
    result = cli("validate", str(ROOT / "spaces" / name), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid (spec hash" in result.stdout
