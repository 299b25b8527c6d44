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
from search.report import build, hypervolume
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
    assert names == sorted(["leaderboard.csv", "index.html", "plotly.min.js"]
                           + [f"{n}.{e}" for n in ALL_PLOTS for e in ("html", "png")])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    assert report.notes == []
    for name in ALL_PLOTS:
        page = (tmp_path / "out" / f"{name}.html").read_text()
        # plotly.js is loaded from beside the page, offline: not inlined again
        assert 'src="plotly.min.js"' in page and len(page) < 200_000, len(page)
        width, height = png_size(tmp_path / "out" / f"{name}.png")
        assert width > 300 and height > 200


def test_plotly_js_is_written_once(record, tmp_path):
    """Inlined in each of five pages, plotly.js made a report 24 MB."""
    make(record(), tmp_path / "out")
    files = list((tmp_path / "out").iterdir())
    marker = "plotly.js v"  # the library's banner, in each copy of it
    copies = [f.name for f in files if marker.encode() in f.read_bytes()]
    assert copies == ["plotly.min.js"], copies
    total = sum(f.stat().st_size for f in files)
    assert total < 6_000_000, total  # plotly.js (4.7 MB) once, five pages, their PNGs


def test_the_data_behind_each_figure_holds_the_trials_it_shows(record, tmp_path):
    experiment = record()
    results = experiment.recorded_results()
    report = make(experiment, tmp_path / "out")
    figures = report.figures
    # Optuna's plots read every trial at one epoch, not only the 3 that completed: the space
    # has 4 parameters, so BOHB's rule wants 7 trials at a rung; rung 2 has 5 (epoch 2 of the
    # diverged trial is NaN), rung 1 all 9 (the failed and the running trial's first epoch too)
    basis = report.basis
    assert (basis.epoch, basis.trials, basis.of, basis.need, basis.enough) == (1, 9, 9, 7, True)
    at_rung = {t.trial_id: t.curve()[0][1] for t in results.trials}

    # optimization history: a point per trial, at its value at that epoch
    (points,) = [t for t in figures["optimization_history"].data if t.name == "val_acc"]
    assert sorted(points.y) == sorted(at_rung.values())
    # parallel coordinates: a line per trial, across the objective and each parameter the
    # trials sampled (residual_scale included: None where absent)
    parallel = lines(figures["parallel_coordinate"])
    assert len(parallel) == len(at_rung)
    assert {len(line.x) for line in parallel} == {1 + 4}
    assert list(figures["parallel_coordinate"].layout.xaxis.ticktext) == [
        "val_acc", "lr", "residual", "residual_scale", "weight_decay"]
    # importances: a bar per parameter common to the trials
    (bars,) = figures["param_importances"].data
    assert sorted(bars.y) == sorted(report.importances) == ["lr", "residual", "weight_decay"]
    # slices: one panel per top parameter, a point per trial in each
    top = [name for name, value in report.importances.items() if value > 0][:4]
    panels = [t for t in figures["slice"].data if t.x is not None and len(t.x)]
    assert len(panels) == len(top) and {len(p.x) for p in panels} == {len(at_rung)}
    # learning curves: a line per trial that reported an epoch
    reported = [t for t in results.trials if t.curve()]
    curves = [t for t in figures["learning_curves"].data if t.mode == "lines+markers"]
    assert sorted(c.meta for c in curves) == sorted(t.trial_id for t in reported)
    # the winner drawn again, named; every curve named at its end
    (winner,) = [t for t in figures["learning_curves"].data if t.name == "winner: trial t-best"]
    assert list(winner.y) == [v for _, v in results.best.curve()]
    (names,) = [t for t in figures["learning_curves"].data if t.mode == "text"]
    assert sorted(names.text) == sorted(t.trial_id for t in reported)
    # and the files hold those figures: each trial id is in the interactive learning curves
    page = (tmp_path / "out" / "learning_curves.html").read_text()
    assert all(t.trial_id in page for t in reported)
    # Under each plot of the index: how many trials it rests on, and by which rule.
    index = (tmp_path / "out" / "index.html").read_text()
    assert index.count("Rests on 9 of 9 trials: each trial&#x27;s val_acc at epoch 1") == 4 + 1
    assert "the highest rung at least 7 trials reached (BOHB&#x27;s rule" in index


def test_with_enough_trials_past_a_rung_the_plots_read_there(record, plan, tmp_path):
    """Seven trials reach rung 2 (4 parameters: BOHB's 4 + 3), one completes: the plots rest
    on the seven at epoch 2, not on the one that completed."""
    experiment = record(
        [plan.Planned(f"t{i}", [0.3 + i / 100, 0.4 + i / 50], plan.lr_params(0.01 * (i + 1)),
                      stopped=True) for i in range(6)]
        + [plan.Planned("full", [0.5, 0.6, 0.7, 0.8], plan.lr_params(0.5, scale=0.5)),
           plan.Planned("early", [0.1], plan.lr_params(0.9), stopped=True)])
    report = make(experiment, tmp_path / "out")
    assert (report.basis.epoch, report.basis.trials, report.basis.of) == (2, 7, 8)
    (points,) = [t for t in report.figures["optimization_history"].data if t.name == "val_acc"]
    assert sorted(points.y) == sorted([0.4 + i / 50 for i in range(6)] + [0.6])
    assert report.importances is not None


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


def test_with_one_trial_to_plot_importances_are_skipped_with_the_reason(record, plan,
                                                                       tmp_path):
    experiment = record([plan.Planned("a", [0.5, 0.6, 0.7, 0.8], plan.lr_params(0.1))])
    report = make(experiment, tmp_path / "out")
    assert report.notes == ["Parameter importances (fANOVA): parameter importances need at "
                            "least 2 trials with a value at the epoch the plots read; this "
                            "search has 1 (the learning curves show every trial)"]
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


def test_when_no_trial_completed_the_stopped_ones_are_plotted(record, plan, tmp_path):
    experiment = record([plan.Planned("a", [0.5, 0.6], plan.lr_params(0.1), stopped=True),
                         plan.Planned("b", [0.2], plan.lr_params(0.5), stopped=True)])
    report = make(experiment, tmp_path / "out")
    # 2 trials: no rung has BOHB's 7; epoch 1 is the one both reached
    assert (report.basis.epoch, report.basis.trials, report.basis.enough) == (1, 2, False)
    assert "optimization_history" in report.figures
    assert "no rung was reached by 7 trials" in report.basis.caption("val_acc")


def test_when_no_trial_has_a_value_no_plot_is_drawn(record, plan, tmp_path):
    experiment = record([plan.Planned("c", [float("nan")], plan.lr_params(0.1))])
    report = make(experiment, tmp_path / "out")
    assert report.basis is None and report.figures == {}
    assert len(report.notes) == 5 and all("no trial of 1 has reported a" in n
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
             plan.Planned("b", [float("nan")], plan.lr_params(0.5), stopped=True)]
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


@pytest.mark.parametrize("points, modes, expected", [
    ([(0.9, 9e4), (0.6, 5e4)], ["max", "min"], (0.57, 9.4e4)),
    ([(0.5, 10.0)], ["max", "min"], (0.45, 11.0)),  # one point: a tenth of its value
    ([(0.0, 0.0)], ["max", "max"], (-0.1, -0.1)),  # nothing to scale by: a tenth of one
])
def test_the_reference_point_lies_a_tenth_of_the_range_beyond_the_worst(points, modes, expected):
    assert hypervolume.reference(points, modes) == pytest.approx(expected)


def test_a_search_of_two_objectives_gets_its_pareto_front_and_the_primarys_plots(
        record, plan, tmp_path):
    P = plan.Planned
    trials = [P("big", [0.5, 0.7, 0.8, 0.9], plan.lr_params(0.1), last={"params": 9e4}),
              P("small", [0.4, 0.5, 0.6, 0.7], plan.lr_params(0.05), last={"params": 2e4}),
              P("behind", [0.4, 0.5, 0.55, 0.6], plan.lr_params(0.2), last={"params": 5e4}),
              P("cut", [0.3], plan.lr_params(0.9), stopped=True, last={"params": 1e4})]
    experiment = record(trials, objective=[{"metric": "val_acc", "mode": "max"},
                                           {"metric": "params", "mode": "min"}])
    report = make(experiment, tmp_path / "out")
    names = {p.name for p in report.files}
    assert {"pareto_front.html", "pareto_front.png", "optimization_history.png",
            "learning_curves.png"} <= names
    figure = report.figures["pareto_front"]
    assert "2 of 3 trials of the whole budget" in figure.layout.title.text
    shown = {(round(x, 4), y) for trace in figure.data for x, y in zip(trace.x, trace.y)}
    assert shown == {(0.9, 9e4), (0.7, 2e4), (0.6, 5e4)}  # the stopped trial is not drawn
    assert "On the front: big, small" in (tmp_path / "out" / "index.html").read_text()
    # the existing plots read the primary objective
    assert report.study.directions == [report.study.direction]
    # the front's hypervolume after each trial of the whole budget ended, against the epochs
    # spent by then (the trials ran one after the other, 4 epochs each); the reference is
    # (0.6 - 0.03, 9e4 + 7e3): big alone 0.33 x 7e3, small adds 0.13 x 7.7e4 less their
    # overlap, behind (dominated by small) adds nothing
    volume = report.figures["hypervolume"].data[0]
    assert list(volume.x) == [4, 8, 12]
    assert list(volume.y) == pytest.approx([2310, 2310 + 10010 - 910, 11410])
    assert "hypervolume.png" in names
    # Optuna's plots of the second objective too, its values read as the primary's are
    history = report.figures["optimization_history_params"]
    assert "params at epoch 4" in history.layout.title.text
    assert set(history.data[0].y) == {9e4, 2e4, 5e4}  # every trial's, by params
    assert {"optimization_history_params.png", "slice_params.html"} <= names
    assert set(build.outputs(experiment.recorded_results().objectives)) >= {
        "parallel_coordinate_params.png"}

