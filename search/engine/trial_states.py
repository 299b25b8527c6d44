"""How a trial's outcome reaches Optuna: one table, read by the live searcher (`samplers`) and by
the study persisted for people (`study`), so that what the dashboard and the report show is what
the sampler learned from. No Ray here: the report imports it."""

from __future__ import annotations

import optuna

from search.spec.outcome import Outcome

# Diverged and invalid configs are bad configs: PRUNED keeps them on TPE's "bad" side (an
# invalid one has no intermediate values, which TPE ranks last). An OOM says nothing about
# quality, and a failure nothing at all, so the sampler ignores both (FAIL).
OPTUNA_STATE = {
    Outcome.COMPLETED: optuna.trial.TrialState.COMPLETE,
    Outcome.STOPPED: optuna.trial.TrialState.PRUNED,
    Outcome.KILLED: optuna.trial.TrialState.PRUNED,
    Outcome.DIVERGED: optuna.trial.TrialState.PRUNED,
    Outcome.OOM: optuna.trial.TrialState.FAIL,
    Outcome.INVALID: optuna.trial.TrialState.PRUNED,
    Outcome.FAILED: optuna.trial.TrialState.FAIL,
}
