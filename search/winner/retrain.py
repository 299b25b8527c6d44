"""Train a chosen config once more, on train+validation, and keep it.

    plan = plan_of(load_spec(path), read_provenance(text))  # the config, as a trial builds it
    done = retrain(plan, Path("best-retrained"), on_epoch=print)

The search chose the config on the validation split; nothing is selected any more, so those
examples join the training set (`load_data(validation=False)`), and the test split, never seen
by the search's choice, is evaluated once at the end. One process, no Ray: the same `Trainer`
a trial runs, the same `TrialJob.train_config` that builds a trial's config. The run is logged
to the search's MLflow experiment (`mlflow_run`), and the weights are saved as a plain
state_dict with a model card (`card`). Nothing is written until the test is done, and the card
is written last: a retrain stopped early (Ctrl+C) leaves no weights claiming to be final.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from resnet_core.provenance import version
from resnet_core.config import DataConfig, TrainConfig, resolved
from search.experiment.location import absolute, resolve_tracking_uri
from search.experiment.storage import as_path
from search.spec.model import SearchSpec
from search.spec.problems import Problem, SpecError
from search.spec.redact import redact
from search.winner import card as cards
from search.winner.mlflow_run import RetrainRun, link_tags, run_links, trial_run_id

# What each epoch logs: training only, there is no validation split to score.
PER_EPOCH = ("train_loss", "train_acc", "lr", "epoch_seconds", "images_per_s")


class RetrainFailed(Exception):
    """The retrain cannot be done or did not finish (data missing, training diverged)."""


@dataclass(frozen=True)
class Plan:
    """What a retrain trains, read from a validated spec (no engine needed)."""

    name: str  # the spec's name: the run's name and the default output directory
    config: TrainConfig  # epochs included (budget.max_epochs, or --epochs)
    data: DataConfig  # its root made absolute
    tracking_uri: str  # a relative SQLite path made absolute
    mlflow_experiment: str
    spec_hash: str
    threads: int = 1  # the CPUs a trial of the spec gets (trial.resources.cpu)
    source: Optional[dict] = None  # the export's provenance header, when it has one

    @property
    def run_name(self) -> str:
        return f"retrain {self.source['trial_id']}" if self.source and self.source.get(
            "trial_id") else f"retrain {self.name}"


def plan_of(spec: SearchSpec, source: Optional[dict] = None) -> Plan:
    """The config a retrain trains: the spec's `fixed` and its budget's epochs, built by the
    trial's own `TrialJob.train_config`. A spec that still searches is refused (SpecError):
    there is no one config to retrain."""
    if spec.space:
        raise SpecError([Problem("space", sorted(spec.space), (
            f"space has {len(spec.space)} parameter(s) ({', '.join(sorted(spec.space))}) but "
            "retrain trains one configuration; export a search's winner with `resnet-search "
            "export-best EXPERIMENT -o best.yaml` and retrain that"))], spec.source)
    data = spec.data_config()
    data.root = str(absolute(data.root, spec.base_dir))
    return Plan(name=spec.name, config=spec.job(data).train_config({}), data=data,
                tracking_uri=resolve_tracking_uri(spec.tracking.mlflow_uri, spec.base_dir),
                mlflow_experiment=spec.tracking.experiment or spec.name,
                spec_hash=spec.spec_hash(),
                threads=max(1, int(spec.trial.resources.cpu)), source=source)


def verified(source: Optional[dict],
             exists: Callable[[str], bool] = lambda path: as_path(path).exists()
             ) -> tuple[Optional[dict], Optional[str]]:
    """The provenance as a retrain records it, with `checkpoint_verified`: whether the
    checkpoint its header names is there. When it is not (deleted, moved, a header copied or
    edited by hand), the link to the search is still recorded, marked unverified, and the
    second value is the warning that says so; None otherwise."""
    checkpoint = (source or {}).get("checkpoint")
    if not checkpoint:
        return source, None
    try:
        found = bool(exists(str(checkpoint)))
    except Exception:  # noqa: BLE001  an unreadable store (no credentials, no bucket) is
        found = False  # no evidence either
    if found:
        return {**source, "checkpoint_verified": True}, None
    return {**source, "checkpoint_verified": False}, (
        f"warning: the checkpoint its provenance header names does not exist: {checkpoint}; "
        f"the retrain is recorded as coming from trial {source.get('trial_id')} of "
        f"'{source.get('experiment')}', marked unverified (retrain_of.checkpoint_verified=false)")


def existing(directory: Path) -> list[str]:
    """The files of an earlier retrain in `directory` (replaced only when asked to)."""
    return [name for name in (cards.MODEL_FILE, cards.CARD_JSON, cards.CARD_MD)
            if (directory / name).exists()]


@dataclass
class Retrained:
    directory: Path
    card: dict
    run_id: str
    tracked: bool  # MLflow took every write

    @property
    def metrics(self) -> dict:
        return self.card["metrics"]


def retrain(plan: Plan, directory: Path, *,
            on_epoch: Callable[[dict], None] = lambda metrics: None) -> Retrained:
    """Train `plan` on train+validation, test once, save weights and card in `directory`, log
    it all to MLflow. Raises RetrainFailed, TrackingFailed (the run could not be opened) and
    whatever stopped it (KeyboardInterrupt): the MLflow run is closed saying why."""
    import torch

    from resnet_core.data.datasets import DatasetMissingError, DatasetUnreadableError, load_data
    from resnet_core.train import DivergenceError, Trainer
    from resnet_core.train.runtime import provenance

    if "OMP_NUM_THREADS" not in os.environ:
        # The CPUs a trial had (Ray sets OMP_NUM_THREADS to a task's CPUs), not every core:
        # OpenMP threads that outnumber the free cores spin waiting on each other; on a busy
        # 2-core machine a digits epoch took 18 s with 2 threads and 1.7 s with 1.
        torch.set_num_threads(plan.threads)
    try:
        data = load_data(plan.data, validation=False)
    except (DatasetMissingError, DatasetUnreadableError) as error:
        raise RetrainFailed(str(error)) from None
    try:
        trainer = Trainer(plan.config, data)
    except ValueError as error:  # a config only the model can judge, a batch too big
        raise RetrainFailed(f"the config cannot be trained: {error}") from None
    source = plan.source
    trial_run = trial_run_id(plan.tracking_uri, plan.mlflow_experiment,
                             str((source.get("mlflow") or {}).get("parent_run_id")),
                             str(source.get("trial_id"))) if source else ""
    run = RetrainRun.open(plan.tracking_uri, plan.mlflow_experiment, plan.run_name,
                          tags={**link_tags(source, trial_run), "spec_hash": plan.spec_hash},
                          params=_params(plan))
    history: list[dict] = []
    try:
        started = time.perf_counter()
        for metrics in trainer.fit():
            history.append(metrics)
            run.epoch({k: metrics[k] for k in PER_EPOCH if k in metrics}, metrics["epoch"])
            on_epoch(metrics)
        tested = trainer.test()
        seconds = time.perf_counter() - started
        card = card_of(plan, data, history, tested, seconds, run.run_id, trial_run,
                       {**provenance(trainer.device), "numpy": _version("numpy"),
                        "threads": torch.get_num_threads()},
                       datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       experiment_id=run.experiment_id)
        save(directory, trainer.model.state_dict(), card, torch.save)
    except DivergenceError as error:
        run.end("diverged", str(error), status="FAILED")
        raise RetrainFailed(f"{error}; lower lr or check the config") from None
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt)
        run.end("interrupted" if interrupted else "failed",
                "interrupted" if interrupted else f"{type(error).__name__}: {error}",
                status="KILLED" if interrupted else "FAILED")
        raise
    # In MLflow's own pages the description's links are fragments, right on any server.
    tracked = run.finish(dict(tested), step=plan.config.epochs,
                         note=note(card, run_links("", run.experiment_id, run.run_id, trial_run)),
                         model_dir=str(directory.resolve()),
                         artifacts=[str(directory / cards.CARD_MD),
                                    str(directory / cards.CARD_JSON)])
    return Retrained(directory, card, run.run_id, tracked)


def _params(plan: Plan) -> dict[str, Any]:
    return {**resolved(plan.config), **{f"data.{k}": v for k, v in resolved(plan.data).items()}}


def _version(package: str) -> str:
    return version(package) or "absent"


def card_of(plan: Plan, data: Any, history: list[dict], tested: dict, seconds: float,
            run_id: str, trial_run: str, environment: dict, when: str,
            experiment_id: str = "") -> dict:
    """The model card's content (see search.winner.card): plain JSON types only. Its MLflow
    links are absolute, so only for a tracking server (a local store has no address until
    `resnet-search ui` serves it)."""
    from search.tracking.ui import is_server, server_address

    links = (run_links(server_address(plan.tracking_uri), experiment_id, run_id, trial_run)
             if experiment_id and is_server(plan.tracking_uri) else {})
    last = history[-1] if history else {}
    return {
        "name": f"{plan.name} retrained",
        "created_at": when,
        "metrics": {**tested, "train_loss": last.get("train_loss"),
                    "train_acc": last.get("train_acc"), "epochs": plan.config.epochs,
                    "train_seconds": round(seconds, 1)},
        "source": plan.source,
        "data": {"dataset": plan.data.dataset, "root": plan.data.root,
                 "trained_on": "train+validation",
                 "train_examples": len(data.train_y), "test_examples": len(data.test_y),
                 "val_fraction": plan.data.val_fraction, "split_seed": plan.data.split_seed,
                 "subset": plan.data.subset, "image_size": list(data.train_x.shape[2:]),
                 "in_channels": int(data.train_x.shape[1]), "num_classes": data.num_classes,
                 "mean": list(data.mean), "std": list(data.std)},
        "config": resolved(plan.config),
        "versions": {"resnet-search": _version("resnet-search"),
                     **{k: environment[k] for k in ("torch", "torchvision", "numpy", "python")}},
        "hardware": {"device": environment["device"], "platform": platform.platform(),
                     "cpus": os.cpu_count(), "torch_threads": environment["threads"]},
        "mlflow": {"tracking_uri": redact(plan.tracking_uri),
                   "experiment": plan.mlflow_experiment, "run_id": run_id,
                   "winner_run_id": trial_run or None,
                   **{f"{name}_link": link for name, link in links.items()}},
    }


def note(card: dict, links: Optional[dict[str, str]] = None) -> str:
    """The MLflow run's description (Markdown): what was retrained and how it scored, and
    links to the winning trial's run and to the two compared when `links` has them."""
    metrics, source, links = card["metrics"], card.get("source") or {}, links or {}
    objective = source.get("objective") or {}
    value = objective.get("value")
    scored = f"{objective.get('metric')} {value:.4f}, " if isinstance(value, float) else ""
    origin = (f"trial {source.get('trial_id')} of search '{source.get('experiment')}' "
              f"({scored}parent run {(source.get('mlflow') or {}).get('parent_run_id')})"
              if source else f"spec '{card['name']}'")
    return (f"Retrain of {origin} on train+validation for {metrics['epochs']} epochs: "
            f"test_acc {metrics['test_acc']:.4f}, test_loss {metrics['test_loss']:.4f} "
            f"({card['data']['test_examples']} test images). Weights: "
            f"{cards.MODEL_FILE} with {cards.CARD_MD}."
            + (f" [The winning trial's run]({links['winner_run']}); [compared with this run]"
               f"({links['compare']})." if "winner_run" in links else ""))


def save(directory: Path, state_dict: dict, card: dict,
         torch_save: Callable[[Any, str], None]) -> list[Path]:
    """Weights, then the card. The old card goes first and the new one comes last, so a card
    always describes the weights beside it, even when this is stopped half-way."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in (cards.CARD_JSON, cards.CARD_MD):
        (directory / name).unlink(missing_ok=True)
    return [
        _atomic(directory / cards.MODEL_FILE, lambda tmp: torch_save(state_dict, tmp)),
        _atomic(directory / cards.CARD_MD,
                lambda tmp: Path(tmp).write_text(cards.card_markdown(card))),
        _atomic(directory / cards.CARD_JSON,
                lambda tmp: Path(tmp).write_text(cards.card_json(card))),
    ]


def _atomic(path: Path, write: Callable[[str], Any]) -> Path:
    tmp = f"{path}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
