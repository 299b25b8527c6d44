"""The concurrency limit of promotion ASHA and PASHA (search/engine/limiter.py): paused trials hold
no place, a promoted one takes its place back, and the limiter's own count survives a restore
(Ray's ConcurrencyLimiter saves only its searcher's state)."""

from __future__ import annotations

import optuna
from ray.tune.search.optuna import OptunaSearch

from search.engine import compat
from search.engine.limiter import PausedFreeLimiter


def limiter(limit: int = 2) -> PausedFreeLimiter:
    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric="val_acc", mode="max",
                            sampler=optuna.samplers.RandomSampler(seed=0))
    return PausedFreeLimiter(searcher, limit)


def test_paused_trials_hold_no_place_and_a_promoted_one_takes_its_place_back():
    limited = limiter(2)
    assert limited.suggest("a") and limited.suggest("b")
    assert limited.suggest("c") is None  # two out, neither paused
    limited.on_pause("a")
    assert limited.suggest("c")  # a waits paused: its place is free
    assert limited.suggest("d") is None
    limited.on_unpause("a")  # promoted: it runs again, three out of two places
    limited.on_trial_complete("b", {"val_acc": 0.5, "epoch": 1})
    assert limited.suggest("d") is None  # a and c run
    limited.on_trial_complete("c", {"val_acc": 0.4, "epoch": 1})
    assert limited.suggest("d")


def test_a_trial_that_ends_while_paused_frees_nothing_twice():
    limited = limiter(1)
    assert limited.suggest("a")
    limited.on_pause("a")
    assert limited.suggest("b")
    limited.on_trial_complete("a", {"val_acc": 0.1, "epoch": 1})  # stopped while paused
    limited.on_trial_complete("a", {"val_acc": 0.1, "epoch": 1})  # told again: ignored
    assert limited.live_trials == {"b"} and not limited.paused
    assert limited.suggest("c") is None


def test_its_count_and_its_searcher_survive_a_restore(tmp_path):
    limited = limiter(2)
    assert limited.suggest("a") and limited.suggest("b")
    limited.on_pause("a")
    assert limited.suggest("c")
    limited.on_trial_complete("b", {"val_acc": 0.7, "epoch": 1})
    path = tmp_path / "searcher.pkl"
    limited.save(str(path))

    again = limiter(2)
    again.restore(str(path))
    assert (again.live_trials, again.paused) == ({"a", "c"}, {"a"})
    assert again.suggest("d") and again.suggest("e") is None
    # the searcher's study came back too: b's result and the trials still out
    study = compat.optuna_study(again.searcher)
    assert [t.state.name for t in study.trials][:3] == ["RUNNING", "COMPLETE", "RUNNING"]
