"""LCBench through YAHPO Gym's surrogate: an MLP (Auto-PyTorch's space, 7 hyper-parameters)
trained on 34 OpenML tasks, answered at any epoch 1..52 with val_accuracy (in %) and the
cumulative training `time` in seconds by one ONNX model (Pfisterer et al., "YAHPO Gym",
arXiv 2109.03670; LCBench: Zimmer et al. 2021).

The model is read with onnxruntime directly, the way `yahpo_gym.BenchmarkSet.objective_function`
(1.0.2) reads it: the task's integer code from `encoding.json` as `x_cat`, and
[epoch, batch_size, learning_rate, momentum, weight_decay, num_layers, max_units, max_dropout]
as float32 `x_cont`; the output's columns are `Y_NAMES`. yahpo-gym itself is not a dependency:
it pins numpy < 2 and ConfigSpace <= 0.6.1, which this project's stack cannot take
(tests/search/replay/test_problems.py checks this reading against values yahpo_gym computed,
recorded by bench/benchmarks/yahpo/reference.py in yahpo_gym's own environment).

One trial's whole curve is one batched query (52 rows, about 1 ms).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from search.replay.predict import Curve
from search.replay.problems.base import Domain, Family, Numeric, sample

NAME = "lcbench"
MAX_EPOCHS = 52
METRIC, MODE = "val_accuracy", "max"
# yahpo_gym/benchmarks/lcbench.py: the model's inputs and outputs, in order.
CONT_NAMES = ("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers",
              "max_units", "max_dropout")
Y_NAMES = ("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy",
           "test_cross_entropy", "test_balanced_accuracy")
INSTANCE = "OpenML_task_id"
# The task's known worst and best val_accuracy for normalised regret: YAHPO's own statistics come
# from random search with 0.5M points; here REFERENCE_CONFIGS random configurations at every
# epoch (their extremes over 260,000 points), recorded per task by bench/compare.py.
REFERENCE_CONFIGS = 5000
# The shortest epoch the clock takes: the surrogate's cumulative time is not always increasing
# (a regression model's wiggle), and an epoch cannot take no time.
MIN_EPOCH_SECONDS = 1e-3


def _folder(data: Optional[Path]) -> Path:
    if data is None:
        raise ValueError("the lcbench problem needs `data:`, the folder that holds lcbench/ "
                         "(bench/benchmarks/yahpo)")
    return Path(data) / NAME


@functools.cache
def _config_space(data: Path) -> dict:
    return json.loads((_folder(data) / "config_space.json").read_text())


def parameters(data: Optional[Path]) -> dict[str, Domain]:
    """The published space (config_space.json), without the task and the fidelity."""
    out: dict[str, Domain] = {}
    for hp in _config_space(Path(data) if data else data)["hyperparameters"]:
        if hp["name"] in (INSTANCE, "epoch"):
            continue
        kind = {"uniform_int": "int", "uniform_float": "float"}[hp["type"]]
        low, high = hp["lower"], hp["upper"]
        if kind == "float":
            # The file's 0.00010000000000000009 and 0.10000000000000002 are the published 1e-4
            # and 0.1 after a trip through the log scale; yahpo_gym's check would refuse 1e-4
            # itself, the model answers it like its neighbours.
            low, high = float(f"{low:.12g}"), float(f"{high:.12g}")
        out[hp["name"]] = Numeric(kind, low, high, bool(hp.get("log")))
    return out


def defaults(data: Optional[Path]) -> dict[str, Any]:
    return {hp["name"]: hp["default"] for hp in _config_space(Path(data))["hyperparameters"]
            if hp["name"] not in (INSTANCE, "epoch")}


def tasks(data: Optional[Path]) -> list[str]:
    found = next(hp for hp in _config_space(Path(data))["hyperparameters"]
                 if hp["name"] == INSTANCE)
    return list(found["choices"])


@functools.cache
def _session(model: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread: the benchmark runs one search per core in parallel processes.
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model), sess_options=options,
                                        providers=["CPUExecutionProvider"])


class Task:
    """One OpenML task of LCBench: a configuration's curve at epochs 1..52 from the surrogate."""

    metric, mode, max_epochs = METRIC, MODE, MAX_EPOCHS

    def __init__(self, task: str, data: Path) -> None:
        folder = _folder(data)
        encoding = json.loads((folder / "encoding.json").read_text())[INSTANCE]
        if task not in tasks(data):
            raise ValueError(f"lcbench task {task!r} is not one of {tasks(data)}")
        self.task, self.code, self.data = task, int(encoding[task]), Path(data)
        self.session = _session(folder / "model.onnx")
        self._cache: dict[tuple, Curve] = {}

    def query(self, rows: list[Mapping[str, Any]], epochs: list[int]) -> np.ndarray:
        """The surrogate's outputs (columns Y_NAMES) for configuration rows[i] at epochs[i]."""
        x_cont = np.array([[e] + [float(r[n]) for n in CONT_NAMES[1:]]
                           for r, e in zip(rows, epochs)], dtype=np.float32)
        x_cat = np.full((len(rows), 1), self.code, dtype=np.int32)
        inputs = [i.name for i in self.session.get_inputs()]  # x_cat, x_cont
        return self.session.run(None, {inputs[0]: x_cat, inputs[1]: x_cont})[0]

    def curves(self, configs: list[Mapping[str, Any]]) -> list[Curve]:
        """Whole curves of many configurations in one batched query."""
        epochs = list(range(1, MAX_EPOCHS + 1))
        out = self.query([c for c in configs for _ in epochs], epochs * len(configs))
        curves = []
        for i in range(len(configs)):
            block = out[i * MAX_EPOCHS:(i + 1) * MAX_EPOCHS]
            elapsed = np.maximum.accumulate(np.maximum(block[:, 0], 0.0))
            seconds = np.maximum(np.diff(elapsed, prepend=0.0), MIN_EPOCH_SECONDS)
            curves.append(Curve([float(v) for v in block[:, Y_NAMES.index(METRIC)]],
                                [float(s) for s in seconds]))
        return curves

    def reference(self, configs: int = REFERENCE_CONFIGS, seed: int = 0,
                  chunk: int = 500) -> tuple[float, float]:
        """(worst, best) val_accuracy of `configs` random configurations over all epochs."""
        drawn = sample(parameters(self.data), configs, seed)
        values = [v for i in range(0, configs, chunk)
                  for c in self.curves(drawn[i:i + chunk]) for v in c.values]
        return min(values), max(values)

    def __call__(self, params: Mapping[str, Any]) -> Curve:
        key = tuple(float(params[n]) for n in CONT_NAMES[1:])
        if key not in self._cache:
            self._cache[key] = self.curves([params])[0]
        return self._cache[key]


def open_task(task: str, data: Optional[Path]) -> Task:
    if data is None:
        _folder(data)
    return Task(str(task), Path(data))


FAMILY = Family(NAME, True, parameters, defaults, tasks, open_task)
