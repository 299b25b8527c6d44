"""A search's runs deleted from MLflow (`resnet-search rm --mlflow`): its parent run, every
trial run under it and the runs of its winner's retrains in the same MLflow experiment, through MLflow's own `delete_run` (a soft delete: the runs leave every view
and search, and `mlflow gc` purges them with their artifacts for good)."""

from __future__ import annotations

from typing import Optional

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.tracking.names import RETRAIN_TAG
from search.tracking.store import bounded, children_query, sqlite_file

PAGE = 1000  # runs per search page


def delete_search_runs(uri: str, parent_run_id: str,
                       timeout_s: float = 60.0) -> tuple[int, Optional[str]]:
    """(runs deleted, why it failed or None). A SQLite store that does not exist, or a parent
    run it does not hold, has nothing to delete; runs deleted already are not counted."""
    db = sqlite_file(uri)
    if db is not None and not db.is_file():
        return 0, None  # MLflow would create an empty store to find nothing in it
    deleted: list[str] = []

    def delete() -> None:
        client = MlflowClient(uri)
        try:
            parent = client.get_run(parent_run_id)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return
            raise
        runs = [run for query in (children_query(parent_run_id),
                                  f"tags.`{RETRAIN_TAG}.parent_run_id` = '{parent_run_id}'")
                for run in _every(client, parent.info.experiment_id, query)]
        for run in [*runs, parent]:  # the parent last: a failure half-way leaves it to rerun
            if run.info.lifecycle_stage != "deleted":
                client.delete_run(run.info.run_id)
                deleted.append(run.info.run_id)

    problem = bounded(uri, timeout_s, delete)
    return len(deleted), problem


def _every(client: MlflowClient, experiment_id: str, query: str) -> list:
    """Every run of the experiment that `query` finds, deleted ones too, page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, run_view_type=ViewType.ALL,
                                  max_results=PAGE, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs
