"""The Ray Tune function trainable: one trial = fixed ∪ sampled params, trained by resnet_core.

Every epoch is reported with a checkpoint, so a lost worker or node costs at most the epoch in
flight, and with the trial's costs (parameters, FLOPs, inference latency, training seconds so
far: resnet_core/train/cost.py); a restarted trial resumes from `tune.get_checkpoint()` at
checkpoint + 1. Divergence and out-of-memory are properties of the config, not of the
infrastructure, so they end the trial normally with a recorded reason instead of raising into
Ray's retry loop; so does a sampled combination the model rejects.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import TYPE_CHECKING

import torch
from ray import tune

from resnet_core.config import DataConfig, resolved
from resnet_core.data.datasets import load_data
from resnet_core.train import DivergenceError, Trainer
from search.spec.job import TrialJob
from search.spec.outcome import Outcome

if TYPE_CHECKING:
    from resnet_core.data.datasets import DataSplits

CHECKPOINT_FILE = "trainer.pt"


# One dataset per worker process: with `reuse_actors` the next trial on this worker starts
# training without re-reading or re-splitting the data.
_DATA_CACHE: dict[tuple, DataSplits] = {}


def cached_data(cfg: DataConfig) -> DataSplits:
    key = tuple(sorted((k, str(v)) for k, v in resolved(cfg).items()))
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = load_data(cfg)
    return _DATA_CACHE[key]


def _resume(trainer: Trainer) -> None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            # `extend`: a trial of a search whose max_epochs was raised runs on to the new one
            # (search/experiment/extend.py).
            trainer.load_state_dict(Trainer.read(os.path.join(folder, CHECKPOINT_FILE)),
                                    extend=True)


def _report(trainer: Trainer, metrics: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        trainer.save(os.path.join(folder, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _ended(job: TrialJob, epoch: int, why: Outcome, error: BaseException) -> dict:
    reason = f"{type(error).__name__}: {error}"[:500]
    return {"epoch": epoch, "outcome": why.value, "reason": reason, job.metric: job.worst()}


def run_trial(config: dict, job: TrialJob) -> None:
    cfg = job.train_config(config)
    data = cached_data(job.data)
    trainer = None
    try:
        trainer = Trainer(cfg, data)
        _resume(trainer)
        started_at = time.time()  # when the first training step begins (overhead benchmark)
        static = None
        for metrics in trainer.fit():
            # params, flops and latency_ms do not change as it trains: measured once (after the
            # first epoch, outside its train_seconds), then in every result, so that every rung
            # of a scheduler sees them (resnet_core/train/cost.py). Latency is timed only when
            # an objective or a constraint reads it: it costs seconds of a trial that may stop
            # at rung 1.
            static = static or trainer.static_costs(latency=job.reads("latency_ms"))
            metrics.update(static)
            metrics["started_at"] = started_at
            if metrics["epoch"] == cfg.epochs:
                metrics.update(trainer.test())  # reported, never used for selection
            _report(trainer, metrics)
    except ValueError as error:
        if trainer is not None:
            raise  # not a config problem: let Ray record it (and retry)
        # A combination only the model can judge (a fixed zero scale on every branch, Nesterov
        # without momentum): deterministic, so it is recorded instead of retried.
        tune.report(_ended(job, 1, Outcome.INVALID, error))
    except DivergenceError as error:
        tune.report(_ended(job, error.epoch, Outcome.DIVERGED, error))
    except torch.OutOfMemoryError as error:
        tune.report(_ended(job, (trainer.epoch if trainer else 0) + 1, Outcome.OOM, error))
