"""Run a small REAL Ray Tune experiment (no torch) so that the reader is tested on Ray's own files.

    python ray_experiment.py STORAGE NAME

Six trials (a grid over lr) of 4 "epochs" under ASHA, a checkpoint per epoch, one at a time so
that ASHA's decisions are the same on every run: each trial is better than all before it, so
the first four pass every rung, and the last two (the worst) are stopped at epoch 1. Of them:
  lr=1.0  ends itself as diverged at epoch 2      -> outcome "diverged", NaN metrics
  lr=3.0  raises at epoch 2 on every attempt      -> ERROR, error.txt
  lr=0.3  fails once after reporting epoch 3 without a checkpoint, then resumes from epoch 2
          and reports epoch 3 again (value + RETRY_BONUS): result.json holds epoch 3 twice.
Run in a subprocess: Ray's threads and logging stay out of the test process.
"""

from __future__ import annotations

import os
import sys
import tempfile

EPOCHS = 4
QUALITY = {1.0: 0.80, 3.0: 0.85, 0.3: 0.90, 0.1: 0.95, 0.03: 0.60, 0.01: 0.50}  # in run order
LRS = list(QUALITY)
DIVERGING, FAILING, RETRYING, BEST = 1.0, 3.0, 0.3, 0.1
STOPPED = (0.03, 0.01)  # by ASHA at epoch 1
RETRY_BONUS = 0.001


def val_acc(lr: float, epoch: int) -> float:
    return QUALITY[lr] + 0.01 * epoch


def val_loss(lr: float, epoch: int) -> float:
    return 1.0 - val_acc(lr, epoch)


def trainable(config: dict) -> None:
    from ray import tune

    lr = config["lr"]
    checkpoint = tune.get_checkpoint()
    start = 1
    if checkpoint is not None:
        with checkpoint.as_directory() as path:
            with open(os.path.join(path, "epoch")) as handle:
                start = int(handle.read()) + 1
    resumed = checkpoint is not None
    for epoch in range(start, EPOCHS + 1):
        if lr == FAILING and epoch == 2:
            raise ValueError(f"boom at epoch {epoch}")
        metrics = {"epoch": epoch, "val_acc": val_acc(lr, epoch), "val_loss": val_loss(lr, epoch),
                   "train_acc": val_acc(lr, epoch) + 0.05, "train_loss": val_loss(lr, epoch),
                   "lr": lr, "epoch_seconds": 0.01}
        if lr == DIVERGING and epoch == 2:
            tune.report({**metrics, "val_acc": float("nan"), "val_loss": float("nan"),
                         "outcome": "diverged", "reason": "the loss became nan"})
            return
        if lr == RETRYING and epoch == 3:
            if not resumed:  # first attempt: report without a checkpoint, then die
                tune.report(metrics)
                raise RuntimeError("transient failure")
            metrics["val_acc"] += RETRY_BONUS
        with tempfile.TemporaryDirectory() as path:
            with open(os.path.join(path, "epoch"), "w") as handle:
                handle.write(str(epoch))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(path))


def main(storage: str, name: str) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={"lr": tune.grid_search(LRS)},
            tune_config=tune.TuneConfig(
                num_samples=1, metric="val_acc", mode="max", max_concurrent_trials=1,
                trial_dirname_creator=lambda t: t.trial_id,
                scheduler=ASHAScheduler(time_attr="epoch", max_t=EPOCHS, grace_period=1,
                                        reduction_factor=2)),
            run_config=tune.RunConfig(
                name=name, storage_path=storage, verbose=0,
                failure_config=tune.FailureConfig(max_failures=1),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        tuner.fit()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
