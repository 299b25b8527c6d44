"""The published protocol on a problem small enough to check by hand: budget B in full-training
equivalents, random without early stopping as each seed's target, ratios, regret, ranks and the
paired comparison over task x seed."""

from __future__ import annotations

import math

import pytest

from search.replay import protocol
from search.replay.predict import Curve
from search.replay.problems.spec import parse_problem
from search.replay.strategies import STRATEGIES

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


class Toy:
    """A 4-epoch problem over NAS-Bench-201's parameters (only their names are borrowed): the
    more 3x3 convolutions, the better; every epoch 2 s."""

    metric, mode, max_epochs = "val_acc", "max", 4

    def __call__(self, params):
        final = 50 + 8 * sum(v == "nor_conv_3x3" for v in params.values())
        return Curve([final * (e / 4) ** 0.3 for e in range(1, 5)], [2.0] * 4)

    def reference(self):
        return 50.0 * 0.25 ** 0.3, 98.0


@pytest.fixture(scope="module")
def toy():
    problem = parse_problem({"problem": "nb201",
                             "space": {f"Op{i}": {"choice": OPS} for i in range(6)}})
    return problem, Toy()


def test_the_budget_is_twenty_full_trainings_and_checkpoints_end_at_b():
    assert protocol.budget(52) == 1040
    at = protocol.checkpoints(1040)
    assert len(at) == protocol.CHECKPOINTS and at[-1] == 1040 and at == sorted(set(at))
    assert protocol.checkpoints(5, 10) == [1, 2, 3, 4, 5]


def test_seed_records_measure_every_strategy_against_randoms_best(toy):
    problem, evaluator = toy
    budget_epochs = protocol.budget(evaluator.max_epochs)
    strategies = {n: STRATEGIES[n] for n in ("default", "random_asha", "random")}
    records = protocol.seed_records(problem, evaluator, strategies, seed=3, workers=4,
                                    budget_epochs=budget_epochs,
                                    reference=evaluator.reference())
    random = records["random"]
    assert random["epochs"] == budget_epochs == 80 and random["trials"] >= 20
    assert random["epochs_to_target"] <= budget_epochs and random["ratio"] <= 1
    assert random["seconds_ratio"] <= 1.0  # its own end is the clock's unit
    for name, row in records.items():
        assert row["epochs"] == budget_epochs
        assert len(row["regret"]) == len(protocol.checkpoints(budget_epochs)) == 80
        assert row["regret"] == sorted(row["regret"], reverse=True)  # best so far: never worse
        assert 0 <= row["regret_final"] <= row["regret_mean"] <= 1
        assert row["regret_final"] == pytest.approx(
            (98.0 - row["best"]) / (98.0 - evaluator.reference()[0]), abs=1e-9)
        if row["epochs_to_target"] is not None:
            assert 0 < row["seconds_to_target"] <= row["end_seconds"]
            assert row["seconds_to_target"] % 2.0 == pytest.approx(0)  # epochs of 2 s
            assert row["best"] >= random["best"]
    # FIFO runs every trial it starts to the end (but those the budget cuts off); ASHA stops
    # most after their first epoch
    assert random["trials_full"] == 20 and random["share_epochs_in_full"] == 1.0
    assert records["random_asha"]["trials_one_epoch"] > records["random_asha"]["trials_full"]
    assert records["random_asha"]["share_epochs_in_full"] < 1.0
    ranks = sorted(r["rank_anytime"] for r in records.values())
    assert sum(ranks) == pytest.approx(1 + 2 + 3)


def test_summarise_over_tasks_gives_medians_mean_ranks_and_the_paired_test(toy):
    problem, evaluator = toy
    budget_epochs = protocol.budget(evaluator.max_epochs)
    strategies = {n: STRATEGIES[n] for n in ("default", "stock", "random")}
    records = {}
    for task in ("a", "b"):
        per_seed = [protocol.seed_records(problem, evaluator, strategies, seed, 4, budget_epochs,
                                          evaluator.reference()) for seed in range(3)]
        records[task] = {n: [r[n] for r in per_seed] for n in strategies}
    summary = protocol.summarise(records, budget_epochs, "max")
    assert summary["tasks"] == ["a", "b"] and summary["seeds"] == 3
    ranks = [summary["strategies"][n]["mean_rank_anytime"] for n in strategies]
    assert sum(ranks) == pytest.approx(6)  # three strategies ranked 1..3 on every seed
    assert summary["strategies"]["random"]["ratio"]["reached"] == 6  # random reaches its own
    paired = summary["paired"]
    assert (paired["ours"], paired["other"], paired["pairs"]) == ("default", "stock", 6)
    assert paired["better"] + paired["tie"] + paired["worse"] == 6
    band = summary["strategies"]["default"]["regret_band"]
    assert all(a <= m <= b for a, m, b in zip(band["q25"], band["median"], band["q75"]))
    assert set(summary["per_task"]) == {"a", "b"}


def test_the_epoch_clock_makes_every_epoch_one_second(toy):
    _, evaluator = toy
    clocked = protocol.EpochClock(evaluator)
    curve = clocked({f"Op{i}": "none" for i in range(6)})
    assert curve.seconds == [1.0] * 4 and curve.values == evaluator(
        {f"Op{i}": "none" for i in range(6)}).values
    assert (clocked.metric, clocked.mode, clocked.max_epochs) == ("val_acc", "max", 4)
    assert math.isclose(clocked.evaluator.reference()[1], 98.0)
