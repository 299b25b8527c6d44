"""The LCBench warm-start replay's earlier searches: a replayed search read as an experiment's
record (best first, each trial ending as it did), which the warm start then tells and narrows by,
on the real surrogate (a short budget: one search in well under a second)."""

from __future__ import annotations

from bench.warm_start_lcbench import LCBENCH, STRATEGY, as_results
from search.engine.warm import Earlier, knowledge
from search.replay import protocol, simulator
from search.replay.problems.spec import load_problem, problem_search
from search.replay.strategies import STRATEGIES
from search.spec.outcome import Outcome


def test_a_replayed_search_reads_as_a_record_the_warm_start_tells():
    problem = load_problem(LCBENCH)
    evaluator = protocol.EpochClock(problem.open("126025"))
    spec = problem_search(problem, evaluator, STRATEGIES[STRATEGY], trials=200, seed=0)
    run = simulator.replay(spec, evaluator, 2, budget_epochs=120)
    found = as_results(run, evaluator.metric, evaluator.mode, evaluator.max_epochs)
    assert len(found.trials) == len([t for t in run.trials.values() if t.epoch])
    bests = [t.best for t in found.trials]
    assert bests == sorted(bests, reverse=True)  # best first, as the record lists them
    by_id = {t.trial_id: t for t in found.trials}
    for trial in run.trials.values():
        if trial.epoch:
            mine = by_id[trial.trial_id]
            assert mine.params == trial.config and mine.epochs == trial.epoch
            assert mine.outcome == (
                Outcome.DIVERGED if trial.curve.diverged and trial.epoch < evaluator.max_epochs
                else Outcome.COMPLETED if trial.epoch == evaluator.max_epochs
                else Outcome.STOPPED if trial.stopped else Outcome.KILLED)
    assert {t.outcome for t in found.trials} >= {Outcome.STOPPED}  # ASHA stopped some
    known = knowledge(spec.space, evaluator.metric, evaluator.mode, [Earlier("a", found)],
                      top=4, narrow=2)
    assert len(known.trials) >= 2  # the two the box rests on are inside it
    assert known.narrowing.trials == 2
