"""The MLflow run of a retrain, in the search's own MLflow experiment and linked to the search by
tags (`retrain_of.*`: its parent run, the winning trial and that trial's run).

Not a child of the search's parent run: the search's mirror and reports read the parent's
children as its trials. Opening is synchronous and bounded (a store that cannot take the run
fails the retrain before it trains); the per-epoch metrics go through the search's background
`Writer`, so a slow store never holds up training; closing waits for them, bounded.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from mlflow.entities import Metric, RunTag

from search.tracking import store
from search.tracking.links import mlflow_link
from search.tracking.names import RETRAIN_TAG
from search.tracking.points import mlflow_key
from search.tracking.writer import Writer

DEADLINE_S = 30.0  # a tracking server's calls and final flush, at most this long each


class TrackingFailed(Exception):
    """The tracking store could not take the run; the message says why."""


def trial_run_id(uri: str, experiment: str, parent_run_id: str, trial_id: str) -> str:
    """The MLflow run of the search's trial `trial_id` (a child of its parent run), or "" when
    the store holds none (the mirror could not write it)."""
    from mlflow.tracking import MlflowClient

    found: list[Any] = []

    def look() -> None:
        client = MlflowClient(uri)
        known = client.get_experiment_by_name(experiment)
        if known is None:
            return
        found.extend(client.search_runs(
            [known.experiment_id], max_results=1,
            filter_string=(f"tags.`{store.PARENT_TAG}` = '{parent_run_id}' "
                           f"and tags.trial_id = '{trial_id}'")))

    store.bounded(uri, DEADLINE_S, look)  # not found is not fatal: the tag stays empty
    return found[0].info.run_id if found else ""


def link_tags(source: Optional[dict], trial_run: str) -> dict[str, str]:
    """The tags that point from the retrain's run to the search it came from (pure)."""
    if not source:
        return {}
    objective = source.get("objective") or {}
    tags = {"experiment": source.get("experiment"), "directory": source.get("directory"),
            "trial_id": source.get("trial_id"),
            "parent_run_id": (source.get("mlflow") or {}).get("parent_run_id"),
            "trial_run_id": trial_run, "checkpoint": source.get("checkpoint"),
            "spec_hash": source.get("spec_hash")}
    if "checkpoint_verified" in source:  # retrain.verified: is the named checkpoint there?
        tags["checkpoint_verified"] = "true" if source["checkpoint_verified"] else "false"
    if objective.get("metric") and objective.get("value") is not None:
        tags[str(objective["metric"])] = objective["value"]
    return {f"{RETRAIN_TAG}.{key}": store.text(value) for key, value in tags.items()
            if value not in (None, "")}


def run_links(server: str, experiment_id: str, run_id: str, trial_run: str) -> dict[str, str]:
    """The retrain's run, the winning trial's run and the two side by side, as MLflow UI links
    in its model-training view (links.mlflow_link): absolute on `server`, or the fragments
    (`#/...`) that MLflow's own pages resolve when `server` is "" (pure)."""
    shown = {"run": mlflow_link(server, experiment_id, run_id=run_id)}
    if trial_run:
        shown.update(winner_run=mlflow_link(server, experiment_id, run_id=trial_run),
                     compare=mlflow_link(server, experiment_id, compare=[trial_run, run_id]))
    return shown


class RetrainRun:
    def __init__(self, uri: str, run_id: str, experiment_id: str = "") -> None:
        self.uri, self.run_id, self.experiment_id = uri, run_id, experiment_id
        self.writer = Writer(uri)

    @classmethod
    def open(cls, uri: str, experiment: str, run_name: str, tags: dict[str, str],
             params: dict[str, Any]) -> "RetrainRun":
        """Create the run (and the MLflow experiment when it is new); TrackingFailed if the
        store does not take it within the deadline."""
        store.quiet_client()  # no "View run ... at" lines on the retrain's output
        made: list[str] = []

        def make() -> None:
            from mlflow.tracking import MlflowClient

            run_id = store.open_parent(uri, experiment, run_name=run_name, tags=tags,
                                       params=params, artifacts={})
            made.extend([run_id, MlflowClient(uri).get_run(run_id).info.experiment_id])

        failed = store.bounded(uri, DEADLINE_S, make)
        if failed or len(made) < 2:
            raise TrackingFailed(f"could not open an MLflow run in experiment '{experiment}' "
                                 f"at {uri}: {failed}")
        return cls(uri, *made)

    def epoch(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        # The names a search's trials use (`lr_last_step`, not `lr`: that is the config's rate).
        points = [Metric(mlflow_key(k), float(v), now, step) for k, v in metrics.items()]
        self.writer.submit(lambda client: client.log_batch(self.run_id, metrics=points))

    def finish(self, metrics: dict[str, float], step: int, note: str, model_dir: str,
               artifacts: list[str]) -> bool:
        """Final metrics, the description, where the weights are and the files; the run
        FINISHED. True when the store took everything within the deadline."""
        self.epoch(metrics, step)
        tags = [RunTag("state", "finished"), RunTag(store.NOTE_TAG, note),
                RunTag("model_dir", store.text(model_dir))]
        self.writer.submit(lambda client: client.log_batch(self.run_id, tags=tags))
        for path in artifacts:
            self.writer.submit(lambda client, path=path: client.log_artifact(self.run_id, path))
        self.writer.submit(lambda client: client.set_terminated(self.run_id, "FINISHED"))
        # A local SQLite store's writes are waited for however long a busy machine makes them
        # (each lands or is dropped after its retries): nothing reconciles a retrain's run later.
        local = store.sqlite_file(self.uri) is not None
        return self.writer.flush(None if local else DEADLINE_S) and self.writer.failures == 0

    def end(self, state: str, reason: str, status: str = "KILLED") -> None:
        """The retrain stopped before it finished (Ctrl+C, divergence): say why, close it."""
        tags = [RunTag("state", state), RunTag("reason", store.text(reason))]
        self.writer.submit(lambda client: client.log_batch(self.run_id, tags=tags))
        self.writer.submit(lambda client: client.set_terminated(self.run_id, status))
        self.writer.flush(DEADLINE_S)
