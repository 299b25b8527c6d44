"""MLflow as a user meets it after a search: the link the launch printed, opened in a real
headless Chromium (Playwright driving the distribution's /usr/bin/chromium) on the shared
finished search's MLflow server; what the runs hold, through MLflow's search API; a quiet
launch; and `resnet-search ui` for a tracking server and for a SQLite store.

Set RESNET_SEARCH_SCREENSHOTS=1 to refresh tests/e2e/screenshots/mlflow-compare.png, the compare
view the README shows.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from mlflow.tracking import MlflowClient

from ports import free_port

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parent / "screenshots" / "mlflow-compare.png"
LINK = re.compile(r"compare the trials in MLflow:\s+(\S+)")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
WAIT_MS = 180_000  # the UI's first load on a busy 2-core machine (only a hang fails it)


def printed_link(finished) -> str:
    found = LINK.search(finished.launch.stdout)
    assert found, finished.launch.stdout[-3000:]
    return found.group(1)


@pytest.fixture(scope="module")
def search(finished):
    """The finished search as MLflow holds it, and as its record does."""
    from search.experiment.record import Experiment
    from search.tracking.store import children_query

    client = MlflowClient(finished.server_url)
    experiment = client.get_experiment_by_name(finished.spec["name"])
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    parent = parents[0]
    trials = client.search_runs([experiment.experiment_id], children_query(parent.info.run_id))
    return SimpleNamespace(client=client, experiment=experiment, parent=parent, trials=trials,
                           results=Experiment.open(finished.experiment).recorded_results())


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


# ---- the launch's output -------------------------------------------------------------------

def test_a_launch_prints_neither_mlflows_run_links_nor_rays_advice_to_turn_auth_off(finished):
    said = finished.launch.stdout + finished.launch.stderr
    for noise in ("View run", "View experiment", "🏃", "🧪", "Token authentication is enabled",
                  "RAY_AUTH_MODE", "Downloading artifacts"):
        assert noise not in said, (noise, said[-3000:])
    # Token authentication stayed on: the local Ray made its token, readable by its owner only.
    token = finished.home / ".ray" / "auth_token"
    assert token.is_file() and token.stat().st_mode & 0o077 == 0


# ---- what the runs hold (MLflow's search API, no browser) -----------------------------------

def test_trial_runs_are_named_numbered_in_start_order_and_hold_no_name_twice(search):
    from search.tracking.names import number_of, run_name

    assert len(search.trials) == len(search.results.trials) == 8
    params = {t.trial_id: t.params for t in search.results.trials}
    by_start = sorted(search.trials, key=lambda run: run.info.start_time)
    numbers = [number_of(run.info.run_name) for run in by_start]
    assert numbers == list(range(1, 9)), [run.info.run_name for run in by_start]
    for run in search.trials:
        data = run.data
        assert run.info.run_name == run_name(number_of(run.info.run_name),
                                             params[data.tags["trial_id"]])
        # a param, a metric and a tag never share a name (lr vs the epoch's lr_last_step...)
        assert not set(data.params) & set(data.metrics), set(data.params) & set(data.metrics)
        assert not set(data.params) & set(data.tags), set(data.params) & set(data.tags)
        assert "lr_last_step" in data.metrics and "lr" not in data.metrics


def test_sampled_numbers_sort_and_filter_as_numbers(search):
    ids = [search.experiment.experiment_id]
    from search.tracking.store import children_query

    query = children_query(search.parent.info.run_id)
    lr = {t.trial_id: t.params["lr"] for t in search.results.trials}
    ordered = search.client.search_runs(ids, query, order_by=["metrics.`hp.lr` DESC"])
    assert [run.data.tags["trial_id"] for run in ordered] == sorted(lr, key=lr.get,
                                                                    reverse=True)
    middle = sorted(lr.values())[len(lr) // 2]
    above = search.client.search_runs(ids, f"{query} and metrics.`hp.lr` > {middle!r}")
    assert sorted(run.data.tags["trial_id"] for run in above) == sorted(
        t for t, value in lr.items() if value > middle)
    for run in search.trials:  # the value itself, not a rounded copy
        assert run.data.metrics["hp.lr"] == lr[run.data.tags["trial_id"]]


def test_a_conditional_parameter_shows_only_on_trials_that_sampled_it(search):
    residual = {run.data.params["residual"] for run in search.trials}
    assert residual == {"add", "scaled"}, residual  # the seeded sampler tries both
    for run in search.trials:
        scaled = run.data.params["residual"] == "scaled"
        assert ("residual_scale" in run.data.params) == scaled, run.data.params
        assert ("hp.residual_scale" in run.data.metrics) == scaled, run.data.metrics


def test_the_winner_is_tagged_and_the_parent_shows_the_objective_and_the_search(
        finished, search):
    from search.tracking.store import KIND, KIND_TAG, NOTE_TAG
    from search.tracking.view import TAG

    best = search.results.best
    marked = [run for run in search.trials if run.data.tags.get("best") == "true"]
    assert [run.data.tags["trial_id"] for run in marked] == [best.trial_id]
    parent = search.parent.data
    assert parent.metrics["val_acc"] == parent.metrics["best_val_acc"] == pytest.approx(
        best.best)
    note = parent.tags[NOTE_TAG]
    assert note.startswith("**Search finished**. 8 trials of at most 3 epochs, on digits, "
                           "objective val_acc (max), sampler tpe (seed 0), scheduler asha")
    link = (f"#/experiments/{search.experiment.experiment_id}/runs/{marked[0].info.run_id}"
            "?workflowType=machine_learning")
    assert (f"**Best:** [{marked[0].info.run_name}]({link}) (trial {best.trial_id}) "
            "with val_acc = ") in note
    assert "- `residual_scale`: float in [0.2, 1], when residual = scaled" in note
    tags = search.experiment.tags
    assert tags[KIND_TAG] == KIND and TAG in tags


# ---- the browser -----------------------------------------------------------------------------

def close_assistant(page) -> None:
    """MLflow's assistant opens as a side panel, narrowing the page: close it."""
    for close in page.get_by_role("button", name="Close", exact=True).all():
        close.click()


def table_rows(page, names: set[str]) -> dict[str, str]:
    """Run name -> the text of its row, top to bottom. The runs table draws each row in parts
    (pinned columns, the others), which carry the row's position."""
    rows = page.locator("[role=row][row-index]")
    parts: dict[int, list[str]] = {}
    for i in range(rows.count()):
        parts.setdefault(int(rows.nth(i).get_attribute("row-index")), []).append(
            rows.nth(i).inner_text())
    shown = {}
    for _, texts in sorted(parts.items()):
        lines = [line.strip() for text in texts for line in text.splitlines()]
        named = [line for line in lines if line in names]
        if named:
            shown[named[0]] = "\n".join(lines)
    return shown


def test_the_printed_link_opens_the_searchs_runs_best_first(finished, search, browser,
                                                           tmp_path):
    from search.tracking.ui import runs_view_url
    from search.tracking.view import VIEW_ID

    link = printed_link(finished)
    assert link == runs_view_url(finished.server_url, search.experiment.experiment_id, VIEW_ID)
    page = browser.new_page(viewport={"width": 1900, "height": 1000})
    page.goto(link)
    names = {run.info.run_name: run for run in search.trials}
    for name in names:
        page.get_by_text(name, exact=True).first.wait_for(timeout=WAIT_MS)
    close_assistant(page)
    # The model-training runs view (not GenAI's overview), with the search's columns: the
    # objective and every sampled number, sorted by each run's best objective.
    assert "/runs" in page.url and "workflowType=machine_learning" in page.url
    for column in ("best_val_acc", "val_acc", "hp.lr", "hp.weight_decay", "hp.augment"):
        page.get_by_role("columnheader", name=column, exact=True).first.wait_for(
            timeout=WAIT_MS)
    page.wait_for_timeout(1000)  # the columns' last paint
    page.screenshot(path=str(tmp_path / "runs-view.png"))  # what the view looks like
    parent_name = search.parent.info.run_name
    rows = table_rows(page, {*names, parent_name})
    (tmp_path / "runs-view.txt").write_text("\n\n".join(rows.values()))
    # The trials only: the parent run is no 13th trial among them.
    assert set(rows) == set(names), list(rows)
    best = [names[name].data.metrics["best_val_acc"] for name in rows]
    assert best == sorted(best, reverse=True), list(zip(rows, best))
    assert best[0] == pytest.approx(search.results.best.best)  # the winner (or its tie) on top
    # The winner, on top, is the one row marked `best` (MLflow's table groups its columns
    # by kind, tags last: the mark cannot come before the metrics).
    winner = next(run.info.run_name for run in search.trials
                  if run.data.tags.get("best") == "true")
    assert "true" in rows[winner].splitlines(), rows[winner]
    assert all("true" not in text.splitlines() for name, text in rows.items() if name != winner)
    page.close()


def test_the_chart_view_shows_the_trials_curves_the_objective_and_no_single_value_charts(
        finished, search, browser, tmp_path):
    """The chart view of the printed link: the parallel coordinates over the sampled
    parameters ending on the objective, the best objective per trial, the per-epoch curves; no
    single-bar chart of an `hp.*` number (one value per run)."""
    page = browser.new_page(viewport={"width": 1900, "height": 1400})
    page.goto(printed_link(finished) + "&compareRunsMode=CHART")
    page.get_by_text("Parallel Coordinates", exact=True).first.wait_for(timeout=WAIT_MS)
    page.locator("h4", has_text="best_val_acc").first.wait_for(timeout=WAIT_MS)
    close_assistant(page)
    page.wait_for_timeout(3000)  # the charts' drawing
    page.screenshot(path=str(tmp_path / "charts-view.png"), full_page=True)
    text = page.inner_text("body")
    (tmp_path / "charts-view.txt").write_text(text)
    for run in search.trials:  # its run list: the trials (the table test: and no parent)
        assert run.info.run_name in text, run.info.run_name
    # The cards on screen (the UI draws those below the fold as they scroll in): the parallel
    # coordinates first, then the objective's; none for an hp.* number.
    titles = [t.strip() for t in page.locator("h4").all_inner_texts()]
    assert titles[0] == "Parallel Coordinates", titles
    assert "best_val_acc" in titles and not [t for t in titles if t.startswith("hp.")], titles
    # No card titled by an hp.* number (text outside a drawing: the parallel coordinates'
    # axes, drawn in SVG, name them).
    for key in search.trials[0].data.metrics:
        if key.startswith("hp."):
            titled = [e for e in page.get_by_text(key, exact=True).all()
                      if e.evaluate("e => !e.closest('svg')")]
            assert not titled, (key, len(titled))
    page.close()


def test_every_chart_point_stands_on_the_epoch_axis(finished, search):
    """MLflow's charts draw every run on one x axis (the step): the parent's points once
    stood at step = the Unix time, squeezing each trial's curve into x = 0. Read as the UI
    reads them (the REST API's metric history), every step of every run is an epoch."""
    max_epochs = finished.spec["budget"]["max_epochs"]
    for run in [search.parent, *search.trials]:
        for key in run.data.metrics:
            answer = requests.get(f"{finished.server_url}/api/2.0/mlflow/metrics/get-history",
                                  params={"run_id": run.info.run_id, "metric_key": key},
                                  timeout=120)
            assert answer.ok, answer.text
            steps = [point["step"] for point in answer.json()["metrics"]]
            assert steps and all(0 <= step <= max_epochs for step in steps), (
                run.info.run_name, key, steps)


def metrics_shown(page) -> list[float]:
    """The numbers of the compare view's Metrics section."""
    text = page.inner_text("body")
    section = text[text.index("\nMetrics\n"):text.index("\nArtifacts\n")]
    return [float(n) for n in NUMBER.findall(section)]


def shown_as(value: float, numbers: list[float]) -> bool:
    """Whether the UI shows `value` among `numbers`: it prints 3 decimals, or 4 significant
    digits for a small value (2.694e-4)."""
    if abs(value) >= 1e-3:
        return any(abs(n - value) <= 5e-4 + 1e-9 for n in numbers)
    return any(math.isclose(n, value, rel_tol=1e-3) for n in numbers)


def test_the_compare_view_of_the_best_and_another_trial_shows_their_sampled_numbers(
        finished, search, browser, tmp_path):
    best = next(run for run in search.trials if run.data.tags.get("best") == "true")
    other = min(search.trials, key=lambda run: run.data.metrics["val_acc"])
    page = browser.new_page(viewport={"width": 1150, "height": 1250})
    page.goto(printed_link(finished))
    for run in (best, other):  # as a user does: tick both rows, then Compare
        page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=WAIT_MS)
        row = page.locator("[role=row]", has=page.get_by_text(run.info.run_name, exact=True))
        row.first.get_by_role("checkbox").check()
    page.get_by_role("button", name="Compare").click()
    page.get_by_text("Comparing 2 Runs").wait_for(timeout=WAIT_MS)
    page.get_by_text("hp.lr", exact=True).first.wait_for(timeout=WAIT_MS)
    assert f'"{best.info.run_id}"' in page.url.replace("%22", '"')

    for run in (best, other):
        page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=WAIT_MS)
    numbers = metrics_shown(page)
    for run in (best, other):
        for key, value in run.data.metrics.items():
            if key.startswith("hp."):
                assert shown_as(value, numbers), (run.info.run_name, key, value, numbers)

    # The picture the README shows: the runs' names, their params as MLflow keeps them (text)
    # and their sampled numbers as metrics. The same page in model-training mode (MLflow's
    # Compare button drops it from the address), the plots folded away, the params cut to
    # those that differ.
    page.goto(page.url + "&workflowType=machine_learning")
    page.get_by_text("hp.lr", exact=True).first.wait_for(timeout=WAIT_MS)
    close_assistant(page)
    page.get_by_text("Visualizations", exact=True).click()
    page.get_by_text("Show diff only").first.click()
    page.get_by_text("weight_decay", exact=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1000)  # the folding animation
    picture = tmp_path / "mlflow-compare.png"
    page.screenshot(path=str(picture))
    assert picture.stat().st_size > 10_000
    if os.environ.get("RESNET_SEARCH_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(picture, SCREENSHOT)
    page.close()


# ---- `resnet-search ui` ---------------------------------------------------------------------

def test_ui_prints_the_searchs_runs_on_its_tracking_server(finished, cli):
    shown = cli("ui", str(finished.spec_path), cwd=finished.home)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == printed_link(finished)


def local_experiment(tmp_path: Path) -> tuple[Path, str]:
    """A recorded experiment whose runs are in a SQLite store, as a launch leaves them."""
    from search.experiment.state import State, Status, write_state
    from search.tracking.store import open_parent

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = {"objective": {"metric": "val_acc", "mode": "max"},
            "space": {"lr": {"float": [0.01, 0.1], "log": True, "step": None, "when": {}}}}
    parent = open_parent(uri, "local", "local", tags={}, params={},
                         artifacts={"spec.json": json.dumps(spec)})
    directory = tmp_path / "runs" / "local"
    directory.mkdir(parents=True)
    now = time.time()
    write_state(directory, State(name="local", spec_hash="x", parent_run_id=parent,
                                 tracking_uri=uri, status=Status.FINISHED, created_at=now,
                                 updated_at=now))
    return directory, parent


# Ctrl+C, its terminal closed, or killed outright (no clean-up of its own can run)
@pytest.mark.parametrize("sig", ["SIGINT", "SIGHUP", "SIGKILL"])
def test_ui_serves_a_sqlite_store_until_ctrl_c(tmp_path, cli, sig):
    directory, parent = local_experiment(tmp_path)
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    # Started as a script's background job (`resnet-search ui ... &`) is: with SIGINT ignored,
    # which a child inherits and Python then leaves ignored. It must stop on SIGINT all the same.
    ui = subprocess.Popen([sys.executable, "-m", "search.cli", "ui", str(directory), "--port",
                           str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        link = ui.stdout.readline().strip()  # printed once the server answers
        experiment = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(
            parent).info.experiment_id
        assert link == (f"http://127.0.0.1:{port}/#/experiments/{experiment}/runs?"
                        "workflowType=machine_learning&viewStateShareKey=resnet-search")
        answer = requests.get(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get",
                              params={"run_id": parent}, timeout=120)
        assert answer.ok and answer.json()["run"]["info"]["run_name"] == "local"

        busy = cli("ui", str(directory), "--port", str(port), cwd=tmp_path)
        assert busy.returncode == 1, busy.stdout + busy.stderr
        assert f"port {port} on 127.0.0.1 is in use" in busy.stderr
        assert "Traceback" not in busy.stderr

        ui.send_signal(getattr(signal, sig))
        ended = 0 if sig != "SIGKILL" else -signal.SIGKILL
        assert ui.wait(300) == ended, ui.stderr.read()  # generous: only a hang fails it
    finally:
        if ui.poll() is None:
            ui.kill()
    # The server went with it: the port is free again.
    deadline = time.monotonic() + 120  # generous: the server was killed with its group
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        except requests.ConnectionError:
            break
        except requests.Timeout:  # something still holds the port, too busy to answer
            pass
        time.sleep(0.5)
    else:
        pytest.fail(f"the MLflow UI still answers on port {port} after {sig}")


@pytest.mark.parametrize("case", ["no record", "no store"])
def test_ui_of_an_experiment_it_cannot_show_exits_1_saying_why(tmp_path, cli, case):
    directory, _ = local_experiment(tmp_path)
    if case == "no record":
        directory = tmp_path / "runs" / "missing"
        directory.mkdir()
        said = "holds no experiment record"
    else:
        (tmp_path / "mlflow.db").unlink()
        said = f"{tmp_path / 'mlflow.db'} does not exist"
    shown = cli("ui", str(directory), cwd=tmp_path)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert said in shown.stderr and "Traceback" not in shown.stderr
