"""The MLflow tracking store: probed before a launch (a local SQLite store made ready by
sqlite_store.py), the experiment's parent run opened, reopened by a resumed launch and
summarised at the end of each. Synchronous calls; the launch puts each under a deadline
(`within`)."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.tracking import describe, sqlite_store, view
from search.tracking.links import mlflow_link
from search.tracking.names import BEST_TAG, EPOCHS_TAG, PARENT_TAG, PARETO_TAG

log = logging.getLogger("resnet_search.tracking")

NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
# The experiment's kind: "Machine learning" (runs and their metrics), not GenAI traces. MLflow's
# UI shows it as the experiment's type; a UI without the GenAI / Model training switch opens the
# experiment in that mode (3.17 takes the mode from the address, which ui.py's links give).
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def quiet_client() -> None:
    """MLflow's client prints "🏃 View run NAME at: URL" and "🧪 View experiment at: URL" on
    stdout whenever a run on a tracking server ends: two lines per trial, more than a launch
    prints of its own, linking to a view without the search's columns; and a progress bar for
    every artifact it reads. Its documented switches turn both off for this process (unless the
    environment already chose)."""
    from mlflow.environment_variables import (MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR,
                                              MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT)

    os.environ.setdefault(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name, "true")
    os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")


def within(timeout_s: float, call: Callable[[], Any]) -> Optional[str]:
    """Run `call` with a deadline; return why it failed or timed out, or None. MLflow's HTTP
    client retries with back-off for minutes, which must never hold up a launch or its end."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            call()
        except Exception as error:  # noqa: BLE001 - any failure is reported, none raised
            result["error"] = f"{type(error).__name__}: {error}"

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return f"no answer within {timeout_s:.0f} s"
    return result.get("error")


def bounded(uri: str, timeout_s: float, call: Callable[[], Any]) -> Optional[str]:
    """`within(timeout_s, call)` for a tracking server, whose silence may be a hang; for a
    local SQLite store the call runs to its end with no deadline: it is local work that a busy
    machine only slows down (SQLite gives up by itself on a lock it waited for). Why it failed,
    or None."""
    if sqlite_file(uri) is None:
        return within(timeout_s, call)
    try:
        call()
    except Exception as error:  # noqa: BLE001 - any failure is reported, none raised
        return f"{type(error).__name__}: {error}"
    return None


def sqlite_file(uri: str) -> Optional[Path]:
    """The database file of a `sqlite:///` URI (relative to the working directory, as SQLAlchemy
    reads it), or None for any other store."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def probe(uri: str, timeout_s: float = 10.0,
          note: Callable[[str], None] = lambda text: None) -> Optional[str]:
    """Why the tracking store cannot be used, or None. Runs before any training starts.

    A server (any store but a local SQLite file) must answer within `timeout_s`. A local SQLite
    store gets no deadline: its creation is local work that a busy machine only slows down, and
    a launch given up mid-way would leave it half-built. It is made ready (sqlite_store.py; a
    line through `note` says when it is being created), and `timeout_s` is how long SQLite waits
    for another process that holds it locked."""
    db = sqlite_file(uri)
    if db is not None:
        return _local(uri, db, timeout_s, note)
    refused: list[str] = []

    def contact() -> None:
        try:
            MlflowClient(uri).search_experiments(max_results=1)
        except MlflowException as error:
            why = refusal(error)
            if why is None:
                raise
            refused.append(why)

    problem = within(timeout_s, contact)
    return refused[0] if refused else problem


def _local(uri: str, db: Path, busy_s: float, note: Callable[[str], None]) -> Optional[str]:
    try:
        problem = sqlite_store.ready(db, artifact_location(uri) or "", busy_s, note)
        if problem:
            return problem
        MlflowClient(uri).search_experiments(max_results=1)  # MLflow itself can use it
    except Exception as error:  # noqa: BLE001 - any failure is reported, none raised
        if sqlite_store.is_locked(error):
            return sqlite_store.locked(db)
        return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
    return None


# A server's answer to credentials (HTTP 401/403, or the error codes MLflow maps them to). MLflow
# does not retry these, so the launch hears it at once; it must be told what to fix, not the
# response body ("You are not authenticated...").
REFUSED = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}


def refusal(error: MlflowException) -> Optional[str]:
    """Why the server refused this client's credentials, naming the user and where the
    credentials came from; None for any other error."""
    status = error.get_http_status_code()
    if status not in REFUSED and error.error_code not in REFUSED.values():
        return None
    who = credentials_used()
    fix = ("set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the launching "
           "environment (never in the spec)")
    if status == 403 or error.error_code == REFUSED[403]:
        return (f"the server refused {who or 'a client without credentials'}: HTTP 403, no "
                "permission; ask the server's admin")
    if who is None:
        return f"the server asks for credentials (HTTP 401) and none were given: {fix}"
    return f"the server refused {who}: HTTP 401, wrong password or unknown user; {fix}"


def credentials_used() -> Optional[str]:
    """The credentials MLflow's client sends, read as it reads them, e.g. "user 'ann' (from
    MLFLOW_TRACKING_USERNAME)"; None when it sends none."""
    from mlflow.environment_variables import MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME
    from mlflow.utils.credentials import read_mlflow_creds

    user = read_mlflow_creds().username
    if user:
        source = ("MLFLOW_TRACKING_USERNAME" if MLFLOW_TRACKING_USERNAME.get()
                  else "~/.mlflow/credentials")
        return f"user '{user}' (from {source})"
    return "the token in MLFLOW_TRACKING_TOKEN" if MLFLOW_TRACKING_TOKEN.get() else None


def artifact_location(uri: str) -> Optional[str]:
    """Where a new experiment of a SQLite store keeps its artifacts: `mlruns` next to the
    database, not MLflow's default `./mlruns` in whatever directory the launch ran from."""
    db = sqlite_file(uri)
    return (db.resolve().parent / "mlruns").as_uri() if db else None


def open_parent(uri: str, experiment: str, run_name: str, tags: dict[str, str],
                params: dict[str, Any], artifacts: dict[str, str]) -> str:
    """Create the experiment's parent run and return its id (synchronously: done at launch).
    When `artifacts` holds the resolved spec (`spec.json`), the run's description says what the
    search is, and the experiment gets the search's saved view of its runs (view.py)."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found:
        experiment_id = found.experiment_id
    else:
        try:
            experiment_id = client.create_experiment(experiment,
                                                     artifact_location=artifact_location(uri))
        except MlflowException:
            # Another launch created it since we looked: use theirs.
            found = client.get_experiment_by_name(experiment)
            if not found:
                raise
            experiment_id = found.experiment_id
    if not found or KIND_TAG not in found.tags:  # a kind someone chose stays
        _experiment_tag(client, experiment_id, KIND_TAG, KIND)
    spec = _parsed(artifacts.get("spec.json"))
    if spec is not None:
        _experiment_tag(client, experiment_id, view.TAG,
                        view.tag_value(spec, int(time.time() * 1000)))
        tags = {**tags, NOTE_TAG: text(describe.note("running", spec))}
    run = client.create_run(experiment_id, run_name=run_name, tags={**tags, "state": "running"})
    client.log_batch(run.info.run_id, params=[Param(k, text(v)) for k, v in params.items()])
    for name, body in artifacts.items():
        client.log_text(run.info.run_id, body, name)
    return run.info.run_id


def _experiment_tag(client: MlflowClient, experiment_id: str, key: str, value: str) -> None:
    """How the UI shows the experiment, not what the search needs: a store that refuses it (a
    user who may log runs but not edit the experiment) is told in one line, nothing fails."""
    try:
        client.set_experiment_tag(experiment_id, key, value)
    except MlflowException as error:
        log.warning("MLflow did not take the experiment's tag %s: %s", key,
                    (str(error).splitlines() or [""])[0])


def _parsed(body: Optional[str]) -> Optional[dict]:
    try:
        spec = json.loads(body) if body else None
    except ValueError:
        return None
    return spec if isinstance(spec, dict) else None


def text(value: Any) -> str:
    """A value as an MLflow param or tag (cut to what MLflow accepts)."""
    return str(value)[:6000]


def reopen_parent(uri: str, parent_run_id: str) -> None:
    """A resumed launch: the parent run is running again (its summary is redone at the end)."""
    client = MlflowClient(uri)
    client.update_run(parent_run_id, status="RUNNING")
    client.set_tag(parent_run_id, "state", "running")
    if "reason" in client.get_run(parent_run_id).data.tags:  # why the last launch ended
        client.delete_tag(parent_run_id, "reason")


def extend_parent(uri: str, parent_run_id: str, spec_json: str, *, budget: dict[str, int],
                  changes: list[str]) -> None:
    """An experiment given a larger budget keeps its one parent run: the larger spec replaces
    its `spec.json` (which its description reads), and tags say the budget now
    (`budget.trials`, `budget.max_epochs`) and every extension so far (`extended`). Its params
    `trials` and `max_epochs` stay the first budget's: MLflow never changes a param."""
    client = MlflowClient(uri)
    client.log_batch(parent_run_id, tags=[
        RunTag(f"budget.{key}", text(value)) for key, value in budget.items()] + [
        RunTag("extended", text("; ".join(changes)))])
    client.log_text(parent_run_id, spec_json, "spec.json")


def warm_start_tags(record: dict) -> dict[str, str]:
    """Where a warm-started search's knowledge came from, as its parent run's tags: the
    experiments (`warm_start.from`, one per line), how many of their trials were told
    (`warm_start.told`, `warm_start.of`), how many configurations were queued
    (`warm_start.enqueued`), the line that says why others were not (`warm_start`) and the
    space a `narrow` left (`warm_start.narrowed`)."""
    return {"warm_start.from": text("\n".join(record.get("from", []))),
            "warm_start.told": text(record.get("told", 0)),
            "warm_start.of": text(record.get("of", 0)),
            "warm_start.enqueued": text(record.get("enqueued", 0)),
            "warm_start": text(record.get("text", "")),
            # the narrowed space, one parameter a line: declared -> narrowed (on how many)
            **({"warm_start.narrowed": text("\n".join(
                f"{name}: {b['declared']} -> {b['narrowed']} (on {b['on']})"
                for name, b in record["narrowed"]["params"].items()))}
               if record.get("narrowed") else {})}


def tag_parent(uri: str, parent_run_id: str, tags: dict[str, str]) -> None:
    MlflowClient(uri).log_batch(parent_run_id,
                                tags=[RunTag(k, text(v)) for k, v in tags.items()])


def summarise_parent(uri: str, parent_run_id: str, *, metric: str, best: Optional[dict],
                     state: str, status: str, reason: Optional[str] = None,
                     front: Optional[list[str]] = None) -> None:
    """The search's summary on the parent run, then close it (synchronously, after a launch).

    Called again after every resume, so it writes only what can change: tags, and the best value
    as metrics at a growing step (MLflow params can never change once logged). `best` holds
    trial_id, run_id, value, params (sampled) and config (resolved), or is None. The winner's
    own run is tagged `best=true`, and an earlier winner's run loses that tag. `front`: the trial
    ids on the Pareto front of a search of several objectives, whose runs are tagged
    `pareto=true` (a run that left the front loses the tag); None for one objective."""
    client = MlflowClient(uri)
    parent = client.get_run(parent_run_id)
    winner = _run_of(client, parent, best) if best else None
    tags, stale = _summary_tags(parent.data.tags, best, winner, state, reason)
    metrics = _objective_points(client, parent_run_id, metric, best["value"],
                                _epochs(winner)) if best else []
    client.log_batch(parent_run_id, metrics=metrics,
                     tags=[RunTag(k, v) for k, v in tags.items()])
    for key in sorted(stale):
        client.delete_tag(parent_run_id, key)
    client.set_terminated(parent_run_id, status)
    _mark_winner(client, parent, winner)
    if front is not None:
        _mark_front(client, parent, set(front))
    # Last: an artifact store that fails (it may differ from the tracking store) must not leave
    # the run unclosed. The description reads the spec the run stores.
    won = None
    if best:
        # The description is Markdown that MLflow's UI renders: the winner's name links to its
        # run, as a fragment that resolves on whichever server shows it.
        won = describe.winner_text(metric, best, *(
            (winner.info.run_name, winner.data.tags.get(EPOCHS_TAG),
             mlflow_link("", winner.info.experiment_id, run_id=winner.info.run_id))
            if winner else ()))
    client.set_tag(parent_run_id, NOTE_TAG, text(describe.note(
        state, _stored_spec(client, parent), reason=reason, winner=won)))
    # The winner's full config, ready to train it again.
    if best and best.get("config"):
        client.log_text(parent_run_id, json.dumps(best["config"], indent=2, sort_keys=True,
                                                  default=str), "best_config.json")


def _summary_tags(old: dict[str, str], best: Optional[dict], winner: Optional[Run], state: str,
                  reason: Optional[str]) -> tuple[dict[str, str], set[str]]:
    """The parent's tags to write, and those of an earlier summary to delete."""
    tags = {"state": state}
    if reason:
        tags["reason"] = text(reason)
    stale = {"reason"} if not reason else set()
    if best:
        params = {f"best.{k}": text(v) for k, v in sorted(best["params"].items())}
        tags.update(best_trial_id=best["trial_id"], best_run_id=best.get("run_id") or (
            winner.info.run_id if winner else ""), **params)
        # A conditional param (present only for some choices) of an earlier best must not
        # linger beside the new best's params.
        stale |= {k for k in old if k.startswith("best.") and k not in params}
    return tags, stale & set(old)


def _objective_points(client: MlflowClient, run_id: str, metric: str, value: Any,
                      epochs: int) -> list[Metric]:
    """The best value as `best_<metric>` and under the objective's own name, so that the
    parent's row in the runs table shows it beside its trials'.

    Its step is on the trials' axis (epochs), never a clock: MLflow's charts draw every run of
    the experiment on one x axis, and a parent point at step 1.8e9 (the Unix time) squeezed
    every trial's curve into x = 0. The point sits where the winner's curve ends (its epochs).
    The UI shows a metric's value at its highest step, then its latest time: a later summary
    keeps the step reached so far (a new winner may have trained fewer epochs) and a later
    timestamp, so it is the one shown."""
    if not metric or not isinstance(value, (int, float)) or not math.isfinite(value):
        return []
    keys = (f"best_{metric}", metric)
    earlier = [p for key in keys for p in client.get_metric_history(run_id, key)]
    step = max([max(epochs, 0), *(p.step for p in earlier)])
    now = max([int(time.time() * 1000), *(p.timestamp + 1 for p in earlier)])
    return [Metric(key, float(value), now, step) for key in keys]


def _epochs(winner: Optional[Run]) -> int:
    """The epochs the winner's run says it trained (0 when it does not say)."""
    try:
        return int(winner.data.tags.get(EPOCHS_TAG, 0)) if winner else 0
    except ValueError:
        return 0


def children_query(parent_run_id: str, **tags: str) -> str:
    """The MLflow filter of a parent's child runs (with these tag values)."""
    return " and ".join([f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                         *(f"tags.`{k}` = '{v}'" for k, v in tags.items())])


def _run_of(client: MlflowClient, parent: Run, best: dict) -> Optional[Run]:
    """The winner's run: by its id, or found by its trial id when the launch did not know the
    id (its creation was retried past the end)."""
    if best.get("run_id"):
        try:
            return client.get_run(best["run_id"])
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
    found = client.search_runs([parent.info.experiment_id],
                               children_query(parent.info.run_id, trial_id=best["trial_id"]),
                               max_results=1)
    return found[0] if found else None


def _mark_winner(client: MlflowClient, parent: Run, winner: Optional[Run]) -> None:
    marked = client.search_runs([parent.info.experiment_id],
                                children_query(parent.info.run_id, **{BEST_TAG: "true"}))
    for run in marked:
        if winner is None or run.info.run_id != winner.info.run_id:
            client.delete_tag(run.info.run_id, BEST_TAG)
    if winner is not None and winner.data.tags.get(BEST_TAG) != "true":
        client.set_tag(winner.info.run_id, BEST_TAG, "true")


def move_front(client: MlflowClient, parent_run_id: str, front: Iterable[str]) -> None:
    """`pareto=true` on the runs of the trials on the front and on no other run of the parent
    run's search: what the mirror does while the search runs (the end of a launch does it
    through summarise_parent)."""
    _mark_front(client, client.get_run(parent_run_id), set(front))


def _mark_front(client: MlflowClient, parent: Run, front: set[str]) -> None:
    """`pareto=true` on the runs of the trials on the front, and on no other run."""
    marked = client.search_runs([parent.info.experiment_id],
                                children_query(parent.info.run_id, **{PARETO_TAG: "true"}))
    for run in marked:
        if run.data.tags.get("trial_id") not in front:
            client.delete_tag(run.info.run_id, PARETO_TAG)
    already = {run.data.tags.get("trial_id") for run in marked}
    for trial_id in sorted(front - already):
        for run in client.search_runs([parent.info.experiment_id],
                                      children_query(parent.info.run_id, trial_id=trial_id)):
            client.set_tag(run.info.run_id, PARETO_TAG, "true")


def _stored_spec(client: MlflowClient, parent: Run) -> dict:
    """The resolved spec the parent run stores; its params (trials, max_epochs, sampler,
    scheduler) when the artifact cannot be read."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            spec = _parsed(Path(client.download_artifacts(
                parent.info.run_id, "spec.json", folder)).read_text())
        except Exception:  # noqa: BLE001 - the description then says less, nothing fails
            spec = None
    if spec is not None:
        return spec
    params = parent.data.params
    return {"budget": {"trials": params.get("trials"), "max_epochs": params.get("max_epochs")},
            "objective": {"metric": params.get("metric"), "mode": params.get("mode")},
            "sampler": {"type": params.get("sampler")},
            "scheduler": {"type": params.get("scheduler")}}
