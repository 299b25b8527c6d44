"""Continuing a finished search with more budget, through the real CLI (real local Ray, Optuna,
MLflow on SQLite, real digits): a seeded TPE search launched with `--trials 4`, then launched
again with `--trials 7`, has trained exactly the configurations a fresh 7-trial search with the
same seed trains, each for the same epochs (ASHA stops the same ones), also when the extended
part is interrupted by Ctrl+C and resumed. One trial at a time (`trial.max_concurrent: 1`), so
each proposal follows from every earlier trial's result, as in the fresh search.

4 -> 7 rather than the issue's 12 -> 20 so six launches fit a loaded 2-core machine; with
`n_startup_trials: 3` every extended trial is one TPE modelled from the saved study.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
import yaml
from driving import SMALL_DATA, driver_log, driver_output, driver_paused, runs_of, \
    start_launch, wait_for

from conftest import run_cli, tiny_digits_spec
from search.experiment.location import locate
from search.experiment.record import Experiment
from search.spec.model import load_spec

pytestmark = pytest.mark.ray

FIRST, MORE = 4, 7


def spec_file(tmp_path: Path, trials: int) -> Path:
    spec = tiny_digits_spec(tmp_path, budget={"trials": trials, "max_epochs": 3},
                            data=SMALL_DATA,
                            trial={"resources": {"cpu": 1, "gpu": 0}, "max_failures": 0,
                                   "max_concurrent": 1})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def trained(path: Path) -> dict[str, int]:
    """What the experiment of a spec file trained, read from its record as `trials` reads it:
    each configuration (its sampled params) -> the epochs it ran."""
    spec = load_spec(path)
    location = locate(spec.name, spec.storage_path, spec.tracking.mlflow_uri, spec.data.root,
                      spec.base_dir)
    data = spec.data_config()
    data.root = location.data_root
    found = Experiment(location).results(spec.job(data))
    spent = {json.dumps(t.params, sort_keys=True): len(t.results) for t in found.trials}
    assert len(spent) == len(found.trials), "a configuration was trained twice"
    return spent


def launched(path: Path, *args: str) -> None:
    done = run_cli("launch", str(path), *args, cwd=path.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, int]:
    """What a fresh search with the larger budget and the same seed trains."""
    from processes import kill_ours

    home = tmp_path_factory.mktemp("fresh")
    path = spec_file(home, MORE)
    try:
        launched(path)
    finally:
        kill_ours(home)
    spent = trained(path)
    assert len(spent) == MORE
    return spent


def one_parent_of_the_whole_search(path: Path, spent: dict[str, int]) -> None:
    spec = yaml.safe_load(path.read_text())
    _, parents, children = runs_of(spec["tracking"]["mlflow_uri"])
    assert len(parents) == 1, [p.info.run_id for p in parents]
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["extended"] == f"budget.trials: {FIRST} -> {MORE}"
    assert len(children) == len(spent)


def test_an_extended_search_trains_what_a_fresh_one_with_the_larger_budget_trains(
        tmp_path, fresh, reaper):
    path = spec_file(tmp_path, FIRST)
    launched(path)
    first = trained(path)
    assert len(first) == FIRST
    launched(path, "--trials", str(MORE))
    spent = trained(path)
    assert spent == fresh
    assert {k: v for k, v in spent.items() if k in first} == first  # none trained again
    one_parent_of_the_whole_search(path, spent)


def test_an_extension_interrupted_by_ctrl_c_and_resumed_trains_the_same(tmp_path, fresh, reaper):
    path = spec_file(tmp_path, FIRST)
    launched(path)
    first = trained(path)
    driver = start_launch(path, tmp_path, "--trials", str(MORE))
    try:
        # Ctrl+C once the extension has begun its second trial: one extended trial ended (told
        # to the searcher), one under way, the last still to be proposed. The driver is paused
        # while the test reads what it has said (its progress lines, printed as it decides;
        # Ray's trial folders reach the storage later), so the search cannot move past that
        # moment before Ctrl+C, and Python runs the handler as soon as the driver resumes.
        def interrupt_at_the_second_extended_trial() -> bool:
            with driver_paused(driver):
                extension = driver_output(driver).partition("extending experiment")[2]
                begun = len(re.findall(r"^\d\d:\d\d:\d\d start ", extension, re.MULTILINE))
                if begun < 2:
                    return False
                assert begun < MORE - FIRST, f"the test missed the moment: {begun} begun"
                os.killpg(driver.pid, signal.SIGINT)  # what Ctrl+C in its terminal sends
                return True

        wait_for(interrupt_at_the_second_extended_trial, 600,
                 "the second extended trial to begin", proc=driver)
        code = driver.wait(timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert code == 130, driver_log(driver)
    assert "interrupted (SIGINT): the search is saved" in driver_log(driver)
    partial = trained(path)
    assert len(partial) > FIRST, partial  # the extension had begun

    launched(path, "--trials", str(MORE))  # the same command resumes the extension
    spent = trained(path)
    assert spent == fresh
    assert {k: v for k, v in spent.items() if k in first} == first
    one_parent_of_the_whole_search(path, spent)
