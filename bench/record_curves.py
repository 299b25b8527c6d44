"""Record a learning-curve table: random configurations over a spec's space, every trial trained
to its last epoch with no early stopping, one JSON line per trial (search/replay/table.py).

The table is what `bench/replay.py` replays through the real samplers and schedulers. Training
goes straight through resnet_core (the same `TrialJob.train_config` and `Trainer` a trial runs
in Ray), in `--workers` processes of one torch thread each; Ray would add nothing here: no trial
is stopped, nothing is searched. Resumable: the params of trial k depend only on the spec and
`--seed`, and a rerun skips the trials the file already holds (Ctrl+C loses only the trials in
flight, and exits 130).

    bash .ci/env python bench/record_curves.py spaces/digits.yaml --trials 300 \
        -o bench/curves/digits.jsonl          # ~45 min on 2 cores (18 s a trial, 2 at once)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a file: make `bench`, `search`, `resnet_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna

from bench.common import provenance
from search.engine.space import sample
from search.replay import table
from search.run import provenance as search_provenance
from search.spec.job import TrialJob
from search.spec.model import SearchSpec, load_spec


def planned(spec: SearchSpec, count: int, seed: int) -> list[dict[str, Any]]:
    """The params of trials 0..count-1: Optuna's RandomSampler over the space, in order, so
    the first k of a longer plan are the k of a shorter one (what makes a rerun resume)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [sample(spec.space, study.ask()) for _ in range(count)]


# ---- the worker side: one process per slot, one torch thread each, the data loaded once ----

_WORKER: dict[str, Any] = {}


def _start_worker(job: TrialJob) -> None:
    import torch

    from resnet_core.data.datasets import load_data

    torch.set_num_threads(1)
    _WORKER.update(job=job, data=load_data(job.data))


def train(index: int, params: dict[str, Any]) -> dict:
    """One trial to its last epoch (or to the epoch it diverged at)."""
    import dataclasses

    from resnet_core.train import DivergenceError, Trainer

    job: TrialJob = _WORKER["job"]
    began = time.perf_counter()
    try:
        cfg = job.train_config(params)
        trainer = Trainer(cfg, _WORKER["data"])
    except ValueError as error:  # a combination the model rejects: recorded, not retried
        return {"index": index, "params": params, "outcome": "invalid", "epochs": [],
                "config": {}, "reason": str(error)}
    epochs, outcome = [], "completed"
    try:
        for metrics in trainer.fit():
            epochs.append(table.epoch_row(metrics))
    except DivergenceError:
        outcome = "diverged"
    config = {k: list(v) if isinstance(v, tuple) else v
              for k, v in dataclasses.asdict(cfg).items()}
    return {"index": index, "params": params, "outcome": outcome, "epochs": epochs,
            "config": config, "seconds": time.perf_counter() - began}


# ---- the driver side ----

def record(spec_path: str, out: Path, count: int, seed: int, workers: int) -> int:
    spec = load_spec(spec_path)
    head = table.header(spec.resolved(), seed,
                        {**provenance("cpu"), "packages": search_provenance.versions(),
                         "workers": workers, "torch_threads_per_worker": 1,
                         "spec_file": str(spec_path)})
    writer = table.Writer(out, head)
    plan = planned(spec, count, seed)
    todo = table.missing(count, writer.done)
    print(f"record_curves: {len(writer.done)} of {count} trials in {out}; {len(todo)} to run "
          f"on {workers} workers", flush=True)
    began, finished = time.perf_counter(), 0
    context = get_context("spawn")  # a fresh interpreter: no inherited torch threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(spec.job(),)) as pool:
        pending = {pool.submit(train, i, plan[i]) for i in todo}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    data = future.result()
                    writer.add(table.Row(index=data["index"], params=data["params"],
                                         epochs=data["epochs"], outcome=data["outcome"],
                                         config=data["config"]))
                    finished += 1
                    last = data["epochs"][-1]["val_acc"] if data["epochs"] else float("nan")
                    rate = (time.perf_counter() - began) / finished
                    print(f"  trial {data['index']:4d} {data['outcome']:9s} val_acc {last:.3f}  "
                          f"[{len(writer.done)}/{count}, ~{rate * (len(todo) - finished) / 60:.0f}"
                          f" min left]", flush=True)
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            print(f"record_curves: interrupted; {len(writer.done)} of {count} trials kept in "
                  f"{out}", flush=True)
            return 130
    print(f"record_curves: {len(writer.done)} of {count} trials in {out} "
          f"({(time.perf_counter() - began) / 60:.1f} min this run)", flush=True)
    return 0


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="the search spec whose space, fixed recipe and data to record")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the table (JSON lines)")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="the random sampler's seed")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    return record(args.spec, args.out, args.trials, args.seed, args.workers)


if __name__ == "__main__":
    sys.exit(main())
