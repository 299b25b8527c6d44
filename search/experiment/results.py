"""An experiment's results read from Ray Tune's files on disk, without importing Ray.

Status commands and reports run where Ray may be slow to import or absent, and must never
restore (and so never unpickle) an experiment to look at it. What Ray writes:

    ray/experiment_state-<time>.json  trial list and status; the newest file is the truth
    ray/<trial_id>/params.json        sampled params
    ray/<trial_id>/result.json        one JSON object per report (the last line may be cut short)
    ray/<trial_id>/checkpoint_NNNNNN/ the newest checkpoint
    ray/<trial_id>/error.txt          one "Failure # n" block per failed attempt
    results/<trial_id>.jsonl          ours: every result the driver saw (journal.py), read in
                                      place of Ray's result.json where it exists
    scheduler.json                    ours: {"stopped": [trials the scheduler stopped early], ...}
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Optional

from resnet_core.config import resolved
from search.experiment.decide import RAY_STATE_GLOB, ray_directory
from search.experiment.journal import read_journal
from search.experiment.state import read_json
from search.experiment.storage import StoragePath, as_path, read_text
from search.spec import objective
from search.spec.job import TrialJob
from search.spec.outcome import Outcome, outcome_of
from search.spec.problems import strip_ansi

SCHEDULER_FILE = "scheduler.json"
UNKNOWN = "UNKNOWN"  # no experiment_state file: the status is not known


@dataclass
class TrialRecord:
    trial_id: str
    params: dict  # the sampled params
    config: dict  # the full resolved training config ({} when config_error is set)
    results: list[dict]  # one per epoch (the last report of an epoch), ordered by epoch
    status: str  # Ray's status (PENDING/RUNNING/PAUSED/TERMINATED/ERROR) or UNKNOWN
    error: Optional[str]  # the exception it died of (first line), when it failed
    checkpoint: Optional[StoragePath]  # the newest checkpoint directory
    outcome: Outcome
    best: Optional[float]  # best finite value of the objective over its epochs
    epochs: int  # the last epoch reported (0 if none)
    metric: str = ""  # the objective: what `curve()` plots by default
    config_error: Optional[str] = None  # why the params make no valid config for the job

    def curve(self, metric: Optional[str] = None) -> list[tuple[int, float]]:
        """(epoch, value) of every epoch with a finite value of `metric` (the objective)."""
        name = metric or self.metric
        return [(int(r["epoch"]), float(r[name])) for r in self.results
                if objective.finite(r.get(name))]

    def shown(self, live: bool) -> str:
        """How the trial reads (`trials`, the tables, status's counts): `running` while a live
        search runs it, `pending` while it waits (to start, or for the next launch to resume
        it), else its outcome. The outcome of a trial that has not ended would be a guess:
        outcome_of calls a running trial short of its budget `killed`."""
        if self.status == "RUNNING" and live:
            return "running"
        if self.status in UNENDED:
            return "pending"
        return self.outcome.value

    def as_json(self, live: bool = False) -> dict:
        """What `trials --json` prints of a trial: plain JSON types only."""
        return {"trial_id": self.trial_id, "status": self.status, "outcome": self.shown(live),
                "epochs": self.epochs, "best": self.best if objective.finite(self.best) else None,
                "params": self.params, "error": self.error, "config_error": self.config_error,
                "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
                "curve": [list(point) for point in self.curve()]}


@dataclass
class Results:
    metric: str
    mode: str
    trials: list[TrialRecord] = field(default_factory=list)  # best first (by the primary)
    orphans: list[str] = field(default_factory=list)  # trial dirs Ray never saved
    live: bool = False  # a driver runs the search now: its RUNNING trials are running
    # Several objectives: (metric, mode) of each, the primary first; () for one. Constraints:
    # (metric, "max"/"min", bound) of each (search.spec.job.TrialJob).
    objectives: tuple = ()
    constraints: tuple = ()

    @property
    def best(self) -> Optional[TrialRecord]:
        """The best trial by the primary objective among those that hold every constraint."""
        return next((t for t in self.trials if objective.finite(t.best) and self.feasible(t)),
                    None)

    @property
    def all_objectives(self) -> tuple:
        return self.objectives or ((self.metric, self.mode),)

    def as_objective(self, metric: str, mode: str) -> "Results":
        """These results read by one of their objectives alone (`metric`, `mode`), as a search
        of that one objective would read them: what the report's plots of it rest on."""
        trials = [replace(t, metric=metric,
                          best=objective.best([v for _, v in t.curve(metric)], mode))
                  for t in self.trials]
        return replace(self, metric=metric, mode=mode, objectives=(), constraints=(),
                       trials=trials)

    def values(self, trial: TrialRecord) -> dict[str, Optional[float]]:
        """Every objective's value at the trial's last epoch (None where it has none): one
        model's values, the one its last checkpoint holds."""
        last = trial.results[-1] if trial.results else {}
        return {m: float(last[m]) if objective.finite(last.get(m)) else None
                for m, _ in self.all_objectives}

    def feasible(self, trial: TrialRecord) -> bool:
        """Whether the trial holds every constraint at its last epoch (no constraint: yes)."""
        if not self.constraints:
            return True
        return bool(trial.results) and objective.feasible(trial.results[-1], self.constraints)

    def candidates(self) -> dict[str, tuple[float, ...]]:
        """What the Pareto front is chosen from: every trial that ran its whole budget and
        holds every constraint, as its point of objectives at its last epoch (a trial stopped
        early was compared at a smaller budget: it stands apart)."""
        return objective.candidates(
            {t.trial_id: t.results[-1] for t in self.trials
             if t.outcome is Outcome.COMPLETED and t.results},
            self.all_objectives, self.constraints)

    @property
    def epochs_used(self) -> int:
        return sum(len(t.results) for t in self.trials)


# ---- the pure parts: one file's text in, plain data out ----

def per_epoch(lines: list[str]) -> list[dict]:
    """result.json's reports, one per epoch, ordered by epoch. A retried attempt reports an
    epoch again: its report wins. A line that does not parse (a driver killed mid-write) is
    skipped."""
    by_epoch: dict[int, dict] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            report = json.loads(line)
        except ValueError:
            continue
        epoch = report.get("epoch") if isinstance(report, dict) else None
        if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
            by_epoch[int(epoch)] = report
    return [by_epoch[e] for e in sorted(by_epoch)]


def last_exception(text: str) -> Optional[str]:
    """The first line of the exception of the last failure in an error.txt: the first
    unindented line after the last traceback frame."""
    blocks = re.split(r"^Failure # \d+.*$", strip_ansi(text), flags=re.MULTILINE)
    lines = [line for line in blocks[-1].splitlines() if line.strip()]
    if not lines:
        return None
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    after = lines[frames[-1] + 1:] if frames else []
    found = next((line for line in after if not line[:1].isspace()), None)
    return (found or lines[-1]).strip()


def trial_config(job: TrialJob, params: dict) -> dict:
    """The full config a trial trained with, as the worker built it (without importing torch:
    the worker already checked the registry names)."""
    return resolved(job.train_config(params, registries=False))


# ---- reading the files ----

@dataclass(frozen=True)
class _Listed:
    status: str
    config: dict
    logdir: str
    order: tuple[float, int]  # Ray's trial counter (from the experiment tag), position in file
    checkpoint: Optional[str]  # the checkpoint this snapshot resumes it from (None: none)


# Ray keeps a trial that was still running at the snapshot as resumable from there.
ENDED = ("TERMINATED", "ERROR")
UNENDED = ("PENDING", "PAUSED", "RUNNING")


_CHECKPOINT_NAME = re.compile(rb"checkpoint_\d{6}")


def saved_checkpoint(run_metadata: str) -> Optional[str]:
    """The newest checkpoint Ray's snapshot holds for a trial, by directory name. Ray pickles its
    checkpoint manager into the trial's run metadata; the names are read from those bytes as
    text, never unpickled (reading results must not run code, nor need Ray)."""
    try:
        blob = json.loads(run_metadata)["checkpoint_manager"]["value"]
        names = _CHECKPOINT_NAME.findall(bytes.fromhex(blob))
    except (ValueError, TypeError, KeyError):
        return None
    return max(names).decode() if names else None


def kept(results: list[dict], status: str, checkpoint: Optional[str]) -> list[dict]:
    """The results a resume keeps. An unfinished trial restarts from the checkpoint the snapshot
    holds; a report after it (Ray takes a trial's result, then its checkpoint in a second step,
    and on Ctrl+C it may snapshot in between) will be trained again, so it is not part of the
    experiment yet."""
    if status in ENDED or status == UNKNOWN:
        return results
    at = [r["epoch"] for r in results if checkpoint and r.get("checkpoint_dir_name") == checkpoint]
    return [r for r in results if at and r["epoch"] <= at[-1]]


def _ray_trials(directory: StoragePath) -> Optional[dict[str, _Listed]]:
    """Trials of the newest readable experiment_state file, or None when there is none. A file
    Ray was writing when its driver died is skipped for the one before it."""
    for path in sorted(directory.glob(RAY_STATE_GLOB), reverse=True):
        try:
            data = json.loads(read_text(path))
            entries = data["trial_data"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        listed: dict[str, _Listed] = {}
        for position, entry in enumerate(entries):
            try:
                trial = json.loads(entry[0])
                trial_id = str(trial["trial_id"])
            except (ValueError, KeyError, TypeError, IndexError):
                continue
            counter = str(trial.get("experiment_tag") or "").split("_", 1)[0]
            listed[trial_id] = _Listed(
                status=str(trial.get("status") or UNKNOWN),
                config=trial.get("config") if isinstance(trial.get("config"), dict) else {},
                logdir=str(trial.get("relative_logdir") or trial_id),
                order=(int(counter) if counter.isdigit() else math.inf, position),
                checkpoint=saved_checkpoint(entry[1]) if len(entry) > 1 else None)
        return listed
    return None


def _trial_dirs(directory: StoragePath) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and (
        (p / "params.json").exists() or (p / "result.json").exists()))


def _read_lines(path: StoragePath) -> list[str]:
    try:
        return read_text(path, errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _params(trial_dir: StoragePath, fallback: dict) -> dict:
    try:
        params = json.loads(read_text(trial_dir / "params.json"))
    except (OSError, ValueError):
        return dict(fallback)
    return params if isinstance(params, dict) else dict(fallback)


def _checkpoint(trial_dir: StoragePath) -> Optional[StoragePath]:
    # checkpoint_NNNNNN: the zero-padded index sorts by name.
    found = sorted(p for p in trial_dir.glob("checkpoint_*") if p.is_dir())
    return found[-1] if found else None


def _error(trial_dir: StoragePath) -> Optional[str]:
    try:
        return last_exception(read_text(trial_dir / "error.txt", errors="replace"))
    except FileNotFoundError:
        return None


def _stopped(directory: StoragePath) -> set[str]:
    path = directory / SCHEDULER_FILE
    data = read_json(path) or {}
    stopped = data.get("stopped", []) if isinstance(data, dict) else []
    return {str(t) for t in stopped} if isinstance(stopped, list) else set()


def _record(directory: StoragePath, trial_id: str, trial_dir: StoragePath, status: str,
            fallback_params: dict, job: TrialJob, stopped: set[str],
            saved: Optional[str] = None) -> TrialRecord:
    params = _params(trial_dir, fallback_params)
    try:
        config, config_error = trial_config(job, params), None
    except ValueError as problem:
        config, config_error = {}, str(problem)
    # The driver's journal holds every result it saw; Ray's copy may lack the last ones (a
    # node lost before Ray's sync). Experiments from before the journal have Ray's only.
    lines = read_journal(directory, trial_id)
    if lines is None:
        lines = _read_lines(trial_dir / "result.json")
    results = kept(per_epoch(lines), status, saved)
    # A finished trial with an error.txt failed once and recovered: not its end.
    error = _error(trial_dir) if status != "TERMINATED" else None
    return TrialRecord(
        trial_id=trial_id, params=params, config=config, results=results, status=status,
        error=error, checkpoint=_checkpoint(trial_dir),
        outcome=outcome_of(results[-1] if results else {}, max_epochs=job.max_epochs,
                           errored=status == "ERROR",
                           stopped_by_scheduler=trial_id in stopped),
        best=objective.best((r.get(job.metric) for r in results), job.mode),
        epochs=int(results[-1]["epoch"]) if results else 0,
        metric=job.metric, config_error=config_error)


def read_results(directory: StoragePath, job: TrialJob) -> Results:
    """Every trial of the experiment in `directory` (a directory or an object store prefix),
    best first."""
    directory = as_path(directory)
    stopped = _stopped(directory)
    ray = ray_directory(directory)
    saved = ray.is_dir()
    dirs = _trial_dirs(ray) if saved else []
    listed = _ray_trials(ray) if saved else None
    results = Results(metric=job.metric, mode=job.mode, objectives=job.objectives,
                      constraints=job.constraints)
    if listed is None:
        trials = [_record(directory, t, ray / t, UNKNOWN, {}, job, stopped) for t in dirs]
    else:
        in_order = sorted(listed.items(), key=lambda item: item[1].order)
        trials = [_record(directory, t, ray / info.logdir, info.status, info.config, job,
                          stopped, info.checkpoint) for t, info in in_order]
        known = {info.logdir for info in listed.values()} | set(listed)
        results.orphans = [d for d in dirs if d not in known]
    # sorted() is stable: equal values keep the trials' creation order.
    results.trials = sorted(trials, key=lambda t: objective.rank_key(t.best, job.mode))
    return results
