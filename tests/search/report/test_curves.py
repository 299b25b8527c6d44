"""Learning curves: a line per trial that reported, ASHA's rungs, a mark where a trial ended
early; the data behind each figure checked against the record."""

from __future__ import annotations

import pytest

from search.report import curves

SPEC = {"budget": {"max_epochs": 30}}
ASHA_RUNGS = curves.Rungs("ASHA", ((1, 2),))  # the record's (conftest.py: RUNGS)


@pytest.mark.parametrize("scheduler, state, expected", [
    # as the search ran: every bracket's rungs, from scheduler.json
    ({"type": "asha", "grace_period": 1, "reduction_factor": 2, "brackets": 2},
     {"rungs": [[[4.0, {"a": 0.5}], [2.0, {}], [1.0, {}]], [[4.0, {}], [2.0, {}]]]}, [1, 2, 4]),
    # no snapshot yet: the first bracket's rungs from the spec
    ({"type": "asha", "grace_period": 2, "reduction_factor": 3}, {}, [2, 6, 18]),
    ({"type": "asha", "grace_period": 1, "reduction_factor": 2}, {"rungs": []}, [1, 2, 4, 8, 16]),
    ({"type": "asha", "grace_period": 30, "reduction_factor": 3}, {}, []),
    # a milestone between epochs is reached at the next whole one; none at the budget
    ({"type": "asha", "grace_period": 1, "reduction_factor": 2.5},
     {"rungs": [[[39.0625, {}], [15.625, {}], [6.25, {}], [2.5, {}], [1.0, {}]]]}, [1, 3, 7, 16]),
    ({"type": "fifo"}, {"type": "fifo", "stopped": []}, []),
    # promotion ASHA's own state has `rungs` of another kind (trial -> value, per milestone):
    # its rungs are the spec's, whichever way the state was saved
    ({"type": "promotion_asha", "grace_period": 1, "reduction_factor": 2},
     {"type": "promotion_asha", "milestones": [1, 2, 4], "rungs": [
         [["b2", 0.4], ["a1", 0.5]], [["a1", 0.6]], []]}, [1, 2, 4, 8, 16]),
    ({"type": "pasha", "grace_period": 1, "reduction_factor": 3},
     {"type": "pasha", "milestones": [1, 3, 9, 27], "rungs": [{"a1": 0.5}, {}, {}, {}]},
     [1, 3, 9, 27]),
])
def test_milestones(scheduler, state, expected):
    assert curves.milestones({**SPEC, "scheduler": scheduler}, state) == expected


def lines(figure) -> list:
    return [trace for trace in figure.data if trace.mode == "lines+markers"]


def test_one_line_per_trial_that_reported_with_rungs_and_early_ends(record):
    results = record().recorded_results()
    figure = curves.figure(results, ASHA_RUNGS, max_epochs=4)
    reported = [t for t in results.trials if t.curve()]
    assert sorted(trace.meta for trace in lines(figure)) == sorted(t.trial_id for t in reported)
    for trace in lines(figure):
        recorded = next(t for t in reported if t.trial_id == trace.meta)
        assert list(zip(trace.x, trace.y)) == recorded.curve()
    # one legend entry per kind of end; a running trial is "running", not "killed"
    assert sorted(t.name for t in lines(figure) if t.showlegend) == [
        "completed", "diverged", "failed", "running", "stopped"]
    ends = {t.name: sorted(t.text) for t in figure.data if t.mode == "markers"}
    assert ends == {"ended: stopped by ASHA": ["t-stop1", "t-stop2", "t-stop3"],
                    "ended: diverged": ["t-diverged"], "ended: failed": ["t-failed"]}
    assert [shape.x0 for shape in figure.layout.shapes] == [1, 2]
    assert "ASHA's rungs at epochs 1, 2" in figure.layout.title.text


def test_a_stopped_trial_is_marked_where_it_stopped(record):
    results = record().recorded_results()
    figure = curves.figure(results, ASHA_RUNGS, max_epochs=4)
    (stops,) = [t for t in figure.data if t.name == "ended: stopped by ASHA"]
    by_id = {t.trial_id: t for t in results.trials}
    for trial_id, epoch, value in zip(stops.text, stops.x, stops.y):
        assert (epoch, value) == by_id[trial_id].curve()[-1]
        assert epoch < 4


def test_the_static_plot_draws_the_same(record):
    import matplotlib.pyplot as plt

    results = record().recorded_results()
    figure = curves.draw(results, ASHA_RUNGS, max_epochs=4)
    try:
        (ax,) = figure.axes
        reported = [t for t in results.trials if t.curve()]
        # a Line2D per trial, the winner's again (thick), then one per rung (axvline)
        assert len(ax.lines) == len(reported) + 1 + 2
        winner = ax.lines[len(reported)]
        assert list(winner.get_ydata()) == [v for _, v in results.best.curve()]
        assert winner.get_linewidth() == 4
        assert [line.get_xdata()[0] for line in ax.lines[-2:]] == [1, 2]
        # each curve named by its trial at its end (and each rung captioned)
        names = [text.get_text() for text in ax.texts]
        assert sorted(n for n in names if not n.startswith("rung")) == sorted(
            t.trial_id for t in reported)
        assert "winner: trial t-best" in [t.get_text() for t in ax.get_legend().get_texts()]
        # one scatter per kind of early end: stopped, diverged, failed
        marked = sorted(len(c.get_offsets()) for c in ax.collections)
        assert marked == [1, 1, 3]
    finally:
        plt.close(figure)


def test_without_asha_there_are_no_rungs(record):
    results = record().recorded_results()
    figure = curves.figure(results, curves.Rungs("FIFO"), max_epochs=4)
    assert not figure.layout.shapes and "no early stopping" in figure.layout.title.text


def test_rungs_of_several_brackets_are_named_by_bracket_and_stops_by_the_scheduler(record):
    results = record().recorded_results()
    rungs = curves.Rungs("Median", ((1, 3), (3,)))
    figure = curves.figure(results, rungs, max_epochs=4)
    assert [shape.x0 for shape in figure.layout.shapes] == [1, 3]
    assert [a.text for a in figure.layout.annotations] == ["rung 1 (bracket 1)",
                                                          "rung 3 (bracket 1, 2)"]
    assert figure.layout.title.text.endswith(
        "Median's rungs at epochs 1, 3 (by bracket: 1, 3 | 3)")
    assert "ended: stopped by Median" in {t.name for t in figure.data}
