"""A whole report from an experiment record: every file written and non-empty, the data behind
each figure holding the trials it should, a plot that cannot be drawn skipped with a reason, and
an index that shows them all. Real Optuna, plotly and matplotlib."""

from __future__ import annotations

import csv
import json
import struct
import subprocess
import sys

import pytest

from search.experiment.state import DamagedRecord
from search.report import build
from search.report.build import make

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_PLOTS = ["optimization_history", "param_importances", "parallel_coordinate", "slice",
             "learning_curves"]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    return struct.unpack(">II", data[16:24])


def lines(figure) -> list:
    return [t for t in figure.data if t.mode == "lines"]


def test_every_plot_is_written_as_html_and_png(record, tmp_path):
    experiment = record()
    report = make(experiment, tmp_path / "out")
    names = sorted(p.name for p in report.files)
    assert names == sorted(["leaderboard.csv", "index.html"]
                           + [f"{n}.{e}" for n in ALL_PLOTS for e in ("html", "png")])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    assert report.notes == []
    for name in ALL_PLOTS:
        page = (tmp_path / "out" / f"{name}.html").read_text()
        assert "plotly" in page and len(page) > 100_000  # plotly.js inside: opens offline
        width, height = png_size(tmp_path / "out" / f"{name}.png")
        assert width > 300 and height > 200


def test_the_data_behind_each_figure_holds_the_trials_it_shows(record, tmp_path):
    experiment = record()
    results = experiment.recorded_results()
    report = make(experiment, tmp_path / "out")
    completed = [t for t in results.trials if t.outcome.value == "completed"]
    figures = report.figures

    # optimization history: a point per completed trial, at its final epoch's value
    (points,) = [t for t in figures["optimization_history"].data if t.name == "val_acc"]
    assert sorted(points.y) == sorted(t.curve()[-1][1] for t in completed)
    # parallel coordinates: a line per completed trial, across the objective and each
    # parameter the completed trials sampled (residual_scale included: None where absent)
    parallel = lines(figures["parallel_coordinate"])
    assert len(parallel) == len(completed)
    assert {len(line.x) for line in parallel} == {1 + 4}
    assert list(figures["parallel_coordinate"].layout.xaxis.ticktext) == [
        "val_acc", "lr", "residual", "residual_scale", "weight_decay"]
    # importances: a bar per parameter common to the completed trials
    (bars,) = figures["param_importances"].data
    assert sorted(bars.y) == sorted(report.importances) == ["lr", "residual", "weight_decay"]
    # slices: one panel per top parameter, a point per completed trial in each
    top = [name for name, value in report.importances.items() if value > 0][:4]
    panels = [t for t in figures["slice"].data if t.x is not None and len(t.x)]
    assert len(panels) == len(top) and {len(p.x) for p in panels} == {len(completed)}
    # learning curves: a line per trial that reported an epoch
    reported = [t for t in results.trials if t.curve()]
    curves = [t for t in figures["learning_curves"].data if t.mode == "lines+markers"]
    assert sorted(c.meta for c in curves) == sorted(t.trial_id for t in reported)
    # and the files hold those figures: each trial id is in the interactive learning curves
    page = (tmp_path / "out" / "learning_curves.html").read_text()
    assert all(t.trial_id in page for t in reported)


def test_the_leaderboard_and_the_index(record, tmp_path):
    experiment = record()
    results = experiment.recorded_results()
    make(experiment, tmp_path / "out")
    with open(tmp_path / "out" / "leaderboard.csv", newline="") as handle:
        assert [r["trial_id"] for r in csv.DictReader(handle)] == [
            t.trial_id for t in results.trials]
    index = (tmp_path / "out" / "index.html").read_text()
    for name in ALL_PLOTS:
        assert f"href='{name}.html'" in index
    assert index.count("src='data:image/png;base64,") == len(ALL_PLOTS)
    assert index.count("<tr>") == 1 + len(results.trials)  # the header, then each trial
    assert f"best: trial {results.best.trial_id}, val_acc {results.best.best:.4f}" in index


def test_with_one_completed_trial_importances_are_skipped_with_the_reason(record, plan,
                                                                          tmp_path):
    experiment = record([
        plan.Planned("a", [0.5, 0.6, 0.7, 0.8], plan.lr_params(0.1)),
        plan.Planned("b", [0.2], plan.lr_params(0.5), stopped=True),
        plan.Planned("c", [0.3, 0.4], plan.lr_params(0.05), stopped=True)])
    report = make(experiment, tmp_path / "out")
    assert report.notes == ["Parameter importances (fANOVA): parameter importances need at "
                            "least 2 completed trials; this search has 1 (the learning "
                            "curves show every trial)"]
    written = {p.name for p in report.files}
    assert "param_importances.html" not in written and "param_importances.png" not in written
    assert {"optimization_history.png", "slice.png", "learning_curves.png"} <= written
    assert report.notes[0] in (tmp_path / "out" / "index.html").read_text()


def test_a_single_parameter_space_has_no_importances(record, plan, tmp_path):
    space = {"lr": plan.SPACE["lr"]}
    experiment = record([plan.Planned(n, [0.5, 0.6, 0.7, v], {"lr": lr})
                         for n, v, lr in (("a", 0.8, 0.1), ("b", 0.75, 0.2), ("c", 0.7, 0.4))],
                        space=space)
    report = make(experiment, tmp_path / "out")
    assert [n.split(":")[0] for n in report.notes] == ["Parameter importances (fANOVA)"]
    assert "only lr varies" in report.notes[0]
    assert lines(report.figures["parallel_coordinate"]) and report.figures["slice"]


def test_when_no_trial_completed_only_the_learning_curves_are_drawn(record, plan, tmp_path):
    experiment = record([plan.Planned("a", [0.5, 0.6], plan.lr_params(0.1), stopped=True),
                         plan.Planned("b", [0.2], plan.lr_params(0.5), stopped=True)])
    report = make(experiment, tmp_path / "out")
    assert sorted(report.figures) == ["learning_curves"]
    assert len(report.notes) == 4 and all("no trial of 2 completed its budget" in n
                                          for n in report.notes)


def test_a_report_of_an_experiment_before_its_first_epoch(record, tmp_path):
    report = make(record([]), tmp_path / "out")
    assert report.figures == {}
    assert report.notes[-1] == "Learning curves: no trial of 0 has reported an epoch yet"
    assert sorted(p.name for p in report.files) == ["index.html", "leaderboard.csv"]


def test_a_new_report_replaces_the_files_of_the_last_and_nothing_else(record, plan,
                                                                      tmp_path):
    out = tmp_path / "out"
    make(record(), out)
    (out / "notes.txt").write_text("mine")
    # the same folder again, for an experiment whose importances cannot be drawn
    fewer = [plan.Planned("a", [0.5, 0.6, 0.7, 0.8], plan.lr_params(0.1)),
             plan.Planned("b", [0.2], plan.lr_params(0.5), stopped=True)]
    report = make(record(fewer, storage="other"), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [p.name for p in report.files] + ["notes.txt"])
    assert not (out / "param_importances.png").exists()
    assert set(build.OUTPUTS) >= {p.name for p in report.files}


@pytest.mark.parametrize("entry, said", [
    ({"uniform": [0.01, 1.0]}, "space.lr is {'uniform': [0.01, 1.0]}, not one float, int or "
                               "choice"),
    ({"float": "fast"}, "space.lr is {'float': 'fast'}: 1 validation error"),
])
def test_a_saved_spec_whose_space_does_not_read_back_is_a_damaged_record(record, tmp_path,
                                                                         entry, said):
    experiment = record()
    spec_file = experiment.directory / "spec.json"
    spec = json.loads(spec_file.read_text())
    spec["space"]["lr"] = entry  # edited by hand
    spec_file.write_text(json.dumps(spec))
    with pytest.raises(DamagedRecord) as raised:
        make(experiment, tmp_path / "out")
    assert str(raised.value).startswith(f"{spec_file} is damaged ({said}")


def test_a_report_loads_neither_torch_nor_ray(record, tmp_path):
    """A report runs where the search's results are (a laptop, a CI job): the spec's registry
    names are not checked again, which would load torch (seconds, and 0.6 GB)."""
    experiment = record()
    code = ("import sys; from pathlib import Path; from search.experiment.record import "
            "Experiment; from search.report.build import make; "
            f"make(Experiment.open({str(experiment.directory)!r}), Path({str(tmp_path)!r}) / "
            "'out'); print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_the_index_says_where_a_warm_started_search_learnt_from(record, tmp_path):
    experiment = record()
    state = experiment.state()
    line = "warm start: told 5 of 8 earlier trials (4 completed, 1 stopped) from runs/old"
    state.warm_start = {"from": ["runs/old"], "told": 5, "of": 8, "text": line}
    experiment.save_state(state)
    make(experiment, tmp_path / "out")
    assert line in (tmp_path / "out" / "index.html").read_text()
    cold = record(storage="cold")
    make(cold, tmp_path / "cold")
    assert "warm-started" not in (tmp_path / "cold" / "index.html").read_text()
