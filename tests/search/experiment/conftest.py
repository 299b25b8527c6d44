"""A real Ray Tune experiment, run once per test session (see ray_experiment.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).with_name("ray_experiment.py")


def load_plan() -> ModuleType:
    """ray_experiment.py as a module, for its constants (it imports Ray only inside main)."""
    spec = importlib.util.spec_from_file_location("ray_experiment_plan", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class RayExperiment:
    directory: Path  # the experiment directory; treat as read-only: copy it to change it
    plan: ModuleType  # ray_experiment.py: LRS, QUALITY, FAILING, ...

    @property
    def ray(self) -> Path:
        """Ray's experiment folder in it, as a launch lays it out (decide.RAY_DIR)."""
        return self.directory / "ray"

    def trial_of(self, lr: float) -> str:
        """The trial id Ray gave the trial of `lr` (the grid is run in order)."""
        return next(p.parent.name for p in self.ray.glob("*/params.json")
                    if json.loads(p.read_text())["lr"] == lr)


@pytest.fixture(scope="session")
def ray_experiment(tmp_path_factory: pytest.TempPathFactory) -> RayExperiment:
    storage = tmp_path_factory.mktemp("ray-storage")
    # Laid out as a launch lays it out: Ray's experiment in the `ray/` folder of `exp`.
    # No deadline of its own (it took over 300 s at load 20): pytest-timeout guards a hang.
    done = subprocess.run([sys.executable, str(SCRIPT), str(storage / "exp"), "ray"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"the Ray experiment failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return RayExperiment(storage / "exp", load_plan())
