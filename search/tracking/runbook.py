"""The book of a search's trial runs in MLflow: which run is each trial's, and every MLflow call
that finds, adopts, numbers, creates, reopens, closes or logs into one.

The mirror (`search.tracking.mirror`) turns Tune's events into actions on this book, queued on
the writer (`search.tracking.writer`), as Ray's `MLflowLoggerCallback` hands its MLflow calls to
a helper. Because the writer may drop any action, none relies on an earlier one having
succeeded: each finds its trial's run through `_run_id`, which adopts or creates the run when
its creation was dropped.

Threads: the book belongs to the writer's thread. Its methods run there, as the writer's
actions (those taking a `client`) and notes (`know`, `restore`), and only they change its state.
Another thread reads that state in one place, `snapshot` (Tune's experiment snapshots, the
launch's summary): each copy is taken in one C call (`dict(...)`), which the GIL keeps whole
while the writer adds entries. What the book was built with (`parent_run_id`, `job`,
`conditional`) never changes and may be read anywhere.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Iterable, Optional

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from resnet_core.config import resolved
from search.spec.outcome import Outcome
from search.tracking.backfill import backfill
from search.tracking.names import hp_metrics, logged_params, number_of, run_name
from search.tracking.points import best_point
from search.tracking.store import PARENT_TAG, children_query, text

if TYPE_CHECKING:
    from search.spec.job import TrialJob

log = logging.getLogger("resnet_search.tracking")

MLFLOW_STATUS = {
    Outcome.COMPLETED: "FINISHED",
    Outcome.STOPPED: "FINISHED",
    Outcome.KILLED: "KILLED",
    Outcome.DIVERGED: "FAILED",
    Outcome.OOM: "FAILED",
    Outcome.INVALID: "FAILED",
    Outcome.FAILED: "FAILED",
}

# The tags that say how a run ended: a reopened run drops them until it ends again.
VERDICT_TAGS = ("outcome", "reason", "stopped_by", "stopped_at_epoch")

# What a book holds besides what it is built with: an old mirror's pickle held these itself
# (`MlflowMirror.__setstate__` hands them over).
STATE = ("runs", "configs", "numbers", "resumed", "backfilled", "_ended", "_unparamed", "_steps",
         "_created", "_experiment_id", "_next_number", "_hp_times")


class RunBook:
    """One MLflow run per trial under the search's parent run, across drivers and dropped
    calls."""

    def __init__(self, parent_run_id: str, job: TrialJob,
                 conditional: Iterable[str] = ()) -> None:
        self.parent_run_id = parent_run_id
        self.job = job
        # The space's conditional parameters (`when:`): a trial that did not sample one does
        # not show it among its params (names.logged_params).
        self.conditional = frozenset(conditional)
        self.runs: dict[str, str] = {}  # trial id -> its run id, once MLflow answered
        self.configs: dict[str, dict] = {}  # trial id -> sampled params, to create its run
        # trial id -> its number in start order (the `t007` of its run's name), given when its
        # run is created; carried across drivers, as the runs are.
        self.numbers: dict[str, int] = {}
        self.resumed = False  # restored from a snapshot: runs of an earlier driver may exist
        self.backfilled = 0  # metric points `backfill` wrote
        self._ended: set[str] = set()  # trials whose close reached MLflow
        self._unparamed: set[str] = set()  # runs created whose params are not logged yet
        # run id -> metric -> the steps MLflow holds. A run of an earlier driver is read once
        # per metric before the first point is logged into it: that driver may have logged an
        # epoch its last snapshot did not hold (killed between the two), and the resumed trial
        # trains that epoch again. Each epoch stays in MLflow once. Runs created here start
        # empty and are never read.
        self._steps: dict[str, dict[str, set[int]]] = {}
        self._created: set[str] = set()
        self._experiment_id: Optional[str] = None
        self._next_number: Optional[int] = None  # read from MLflow at this driver's first run
        self._hp_times: dict[str, int] = {}  # trial id -> the timestamp of its hp.* metrics

    def __reduce__(self) -> tuple:
        # Pickled with the tuner (tuner.pkl is written when the tuner is made): a book pickles
        # as what it was built with, never copying what the writer's thread may be changing.
        # A restored launch refills it from Tune's snapshot (`restore`) and from MLflow.
        return (RunBook, (self.parent_run_id, self.job, self.conditional))

    # --- the one read from another thread ---
    def snapshot(self) -> dict:
        """The runs created so far, their numbers and how many points `backfill` wrote (copies,
        each in one C call: the writer's thread may add entries meanwhile)."""
        return {"runs": dict(self.runs), "numbers": dict(self.numbers),
                "backfilled": self.backfilled}

    # --- notes: bookkeeping the writer runs in order with the actions, without MLflow ---
    def know(self, trial_id: str, config: dict) -> None:
        """What creating the trial's run needs (the first config heard of stays)."""
        self.configs.setdefault(trial_id, config)

    def restore(self, runs: dict[str, str], configs: dict[str, dict],
                numbers: dict[str, int]) -> None:
        """What Tune's snapshot of an earlier driver held."""
        self.runs.update(runs)
        self.configs.update(configs)
        self.numbers.update(numbers)
        if self._next_number is not None:  # reconcile has numbered runs already
            self._next_number = max(self._next_number, 1 + max(self.numbers.values(), default=0))
        self.resumed = True

    # --- finding and creating a trial's run ---
    def _experiment(self, client: MlflowClient) -> str:
        if self._experiment_id is None:
            self._experiment_id = client.get_run(self.parent_run_id).info.experiment_id
        return self._experiment_id

    def _children(self, client: MlflowClient, trial_id: Optional[str] = None) -> list:
        """The child runs of this experiment's parent run (of one trial, when given)."""
        query = children_query(self.parent_run_id, **({"trial_id": trial_id} if trial_id else {}))
        return list(client.search_runs([self._experiment(client)], query, max_results=10000,
                                       order_by=["attributes.start_time ASC"]))

    def run_id(self, client: MlflowClient, trial_id: str, adopt: bool = False) -> str:
        """The trial's run, created now when its creation was dropped (or never queued)."""
        run_id = self.runs.get(trial_id)
        if not run_id:
            # After a driver crash a trial may already have a run that Tune's last snapshot
            # did not record (the snapshot never waits for MLflow): adopt it, keeping one run
            # per trial and the epochs it already logged. Its params were logged by whoever
            # created it (re-logging them could clash with values from older code).
            earlier = self._children(client, trial_id) if adopt or self.resumed else []
            run_id = earlier[0].info.run_id if earlier else self._create(client, trial_id)
            self.runs[trial_id] = run_id
        if trial_id in self._unparamed:  # the run exists; its params failed to log
            client.log_batch(run_id, params=self._params(trial_id),
                             metrics=self._hp_metrics(trial_id))
            self._unparamed.discard(trial_id)
        return run_id

    def _create(self, client: MlflowClient, trial_id: str) -> str:
        sampled = self.configs.get(trial_id, {})
        run = client.create_run(self._experiment(client),
                                run_name=run_name(self._number(client, trial_id), sampled),
                                tags={PARENT_TAG: self.parent_run_id, "trial_id": trial_id,
                                      "sampled": ",".join(sorted(sampled))})
        # Params go in a second call: if it fails, the retry must not create a second run.
        self._unparamed.add(trial_id)
        self._created.add(run.info.run_id)
        return run.info.run_id

    def _number(self, client: MlflowClient, trial_id: str) -> int:
        """The trial's number: the next one free when its run is first created. The first time
        in a driver, the runs already under the parent are read: an earlier driver that died
        between starting a trial and Tune's next snapshot numbered a run no state recorded."""
        if trial_id not in self.numbers:
            if self._next_number is None:
                taken = [number_of(run.info.run_name) for run in self._children(client)]
                self._next_number = 1 + max(
                    [0, *self.numbers.values(), *(n for n in taken if n is not None)])
            self.numbers[trial_id] = self._next_number
            self._next_number += 1
        return self.numbers[trial_id]

    def _params(self, trial_id: str) -> list[Param]:
        """The trial's resolved config as params (what a rerun of it needs), without the
        conditional parameters it did not sample."""
        sampled = self.configs.get(trial_id)
        if sampled is None:
            log.warning("MLflow run of trial %s created without params: its sampled config is "
                        "unknown to this driver", trial_id)
            return []
        try:
            values = resolved(self.job.train_config(sampled))
        except ValueError:  # a config the trial itself rejects: its sampled values still say
            values = sampled  # what was tried, and the run's outcome says why it failed
        return [Param(k, text(v)) for k, v in
                sorted(logged_params(values, sampled, self.conditional).items())]

    def _hp_metrics(self, trial_id: str) -> list[Metric]:
        """Its sampled numbers as `hp.*` metrics. The timestamp is taken once, so a retry of a
        write that did commit logs the same points, which MLflow keeps once."""
        when = self._hp_times.setdefault(trial_id, int(time.time() * 1000))
        return hp_metrics(self.configs.get(trial_id) or {}, when)

    # --- what the mirror's actions do ---
    def reopen(self, client: MlflowClient, trial_id: str) -> None:
        """A trial that starts again: its run is RUNNING and without a verdict until it ends."""
        run_id = self.run_id(client, trial_id)
        run = client.get_run(run_id)
        if run.info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        for key in VERDICT_TAGS:
            if key in run.data.tags:
                client.delete_tag(run_id, key)
        self._ended.discard(trial_id)

    def finish(self, client: MlflowClient, trial_id: str, tags: dict[str, str],
               status: str) -> None:
        run_id = self.run_id(client, trial_id)
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        client.set_terminated(run_id, status)
        self._ended.add(trial_id)

    def tag(self, client: MlflowClient, trial_id: str, tags: dict[str, str]) -> None:
        client.log_batch(self.run_id(client, trial_id),
                         tags=[RunTag(k, v) for k, v in tags.items()])

    def write(self, client: MlflowClient, trial_id: str, values: list) -> None:
        """Log the points of `values` whose (metric, step) the trial's run does not hold."""
        run_id = self.run_id(client, trial_id)
        steps = self._steps.setdefault(run_id, {})
        fresh = []
        for point in values:
            if point.key not in steps:
                steps[point.key] = set() if run_id in self._created else {
                    p.step for p in client.get_metric_history(run_id, point.key)}
            if point.step not in steps[point.key]:
                fresh.append(point)
        if fresh:
            client.log_batch(run_id, metrics=fresh)
            for point in fresh:
                steps[point.key].add(point.step)

    def close_orphans(self, client: MlflowClient, kept: set[str]) -> None:
        """A driver killed between starting a trial and Tune's next snapshot leaves an MLflow
        run for a trial the restored experiment never had (the searcher suggested anew). Such
        a run would stay RUNNING forever; close it as killed, saying why, rather than delete
        what it logged."""
        for run in self._children(client):
            trial_id = run.data.tags.get("trial_id", "")
            # Queued creates before this one have filled in self.runs.
            if run.info.status != "RUNNING" or (
                    trial_id in kept and self.runs.get(trial_id) == run.info.run_id):
                continue
            client.log_batch(run.info.run_id, tags=[
                RunTag("outcome", Outcome.KILLED.value),
                RunTag("reason", f"the driver died before Ray saved trial {trial_id}; the "
                                 "resumed search did not continue it")])
            client.set_terminated(run.info.run_id, MLFLOW_STATUS[Outcome.KILLED])

    # --- repair from Ray's results ---
    def backfill(self, client: MlflowClient, trial_id: str, rows: list[dict]) -> None:
        """Every epoch of `rows` (the trial's results in Ray) its run lacks, and its best
        objective so far."""
        # Adopt: reconcile may run before Tune has handed the mirror its saved runs.
        run_id = self.run_id(client, trial_id, adopt=True)
        self.backfilled += backfill(client, {trial_id: run_id}, {trial_id: rows})
        best = best_point(rows, self.job.metric, self.job.mode)
        if best is not None:
            client.log_batch(run_id, metrics=[best])
        self._steps.pop(run_id, None)  # it holds more now: read again when next logged into
        self._created.discard(run_id)

    def redo_ends(self, client: MlflowClient, verdicts: dict[str, tuple[dict[str, str], str]]
                  ) -> None:
        """Close again, as `verdicts` says (trial id -> tags, status), the runs whose close
        was dropped."""
        for trial_id, (tags, status) in verdicts.items():
            if trial_id not in self._ended:
                self.finish(client, trial_id, tags, status)
