"""A search launched through the real product, with the driver's clock of its trials: the
harness the benchmarks that launch searches share (search_overhead.py, search_efficiency.py).

`run_search` launches one spec (`search.run.launch.launch`: Ray Tune, Optuna, the MLflow
mirror) with `EventLog`, a driver-side Tune callback that appends every trial start, result and
end to a JSON-lines file, then shuts Ray down; `results_of` reads one result per (trial, epoch)
from that log, in arrival order.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import ray
from ray.tune import Callback
from rich.console import Console

from search.run.launch import launch
from search.spec.model import parse_spec


class EventLog(Callback):
    """Driver-side clock of every trial event, appended to a JSON-lines file.

    Tune pickles its callbacks with the experiment state, so the file, not this object, is the
    record that outlives `launch()`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)

    def _write(self, event: str, trial: Any, **extra: Any) -> None:
        row = {"t": time.time(), "event": event, "trial_id": trial.trial_id, **extra}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write("start", trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self._write("result", trial, **{k: result.get(k) for k in (
            "epoch", "val_acc", "epoch_seconds", "started_at", "outcome")})

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write("end", trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write("end", trial, errored=True)


def read_events(path: str | os.PathLike) -> list[dict]:
    file = Path(path)
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def results_of(events: list[dict]) -> list[dict]:
    """One result per (trial, epoch) in arrival order (a repeated report is counted once)."""
    seen, rows = set(), []
    for row in events:
        key = (row["trial_id"], row.get("epoch"))
        if row["event"] == "result" and key not in seen:
            seen.add(key)
            rows.append(row)
    return sorted(rows, key=lambda r: r["t"])


def run_search(spec_dict: dict, *, reuse_actors: bool = True, verbose: bool = False) -> dict:
    """Launch one search through the product, then shut Ray down. Returns the launch's wall
    seconds, its driver-side events, the slots it ran on and its LaunchReport."""
    spec = parse_spec(spec_dict)
    experiment = Path(spec.storage_path) / spec.name  # the spec holds an absolute path
    if experiment.exists():  # launch() would resume it, and time a different thing
        raise ValueError(f"experiment directory is {experiment} but must not exist yet: every "
                         "benchmark launch starts a new experiment")
    log = Path(spec.storage_path) / f"{spec.name}.events.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    try:
        report = launch(spec, console=Console(stderr=True, quiet=not verbose),
                        callbacks=(EventLog(log),), reuse_actors=reuse_actors)
        seconds = time.perf_counter() - began
        cpus = ray.cluster_resources().get("CPU", 1.0)
    finally:
        ray.shutdown()
    slots = max(1, int(cpus // spec.trial.resources.cpu))
    slots = min(slots, spec.budget.trials, spec.trial.max_concurrent or slots)
    return {"launch_seconds": seconds, "events": read_events(log), "slots": slots,
            "report": report}
