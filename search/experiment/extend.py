"""An experiment given a larger budget under its own name: what runs on, and what is left.

Raising `budget.trials` lets the searcher propose more trials from its saved state (decide.py
lets only the budget grow; search/engine/budget.py gives Ray the larger count). Raising
`budget.max_epochs` lengthens every trial's run, which the record reads against the new
max_epochs:

- a trial that ran the old max_epochs to its end has not run the new one: it is no longer
  `completed` but cut short without a verdict (`killed`), and it runs on from its last
  checkpoint to the new max_epochs, in the same Ray trial and MLflow run. Its learning-rate
  schedule is re-laid over the longer run from the step it reached (resnet_core's
  `Trainer.load_state_dict(extend=True)`), which for an annealing schedule raises the rate at
  the join: a warm restart, as SGDR's; Optuna keeps the value it was told at the old budget;
- a trial the scheduler stopped at a rung stays stopped. ASHA's rungs lie at
  grace_period x reduction_factor^k epochs whatever max_epochs is, so a larger max_epochs adds
  rungs above the old ones and moves none: the rung that stopped it, and the verdict there,
  stand. (Hyperband's brackets do depend on max_epochs, but Ray saves none of them: they start
  anew on any resume, and what they stopped stays stopped.);
- a trial a time limit cut short (`killed`, ended) runs on too: the same rule;
- trials that diverged, ran out of memory, were invalid or failed stay as they ended.
"""

from __future__ import annotations

from typing import Any, Mapping

from search.spec.outcome import Outcome
from search.experiment.results import Results

ENDED_STATUS = "TERMINATED"


def runs_on(results: Results) -> set[str]:
    """The trials Ray restores as ended that a resumed launch runs on: those that ended without
    a verdict of their own (`killed`), which under a raised max_epochs are the ones that
    completed the old one (pure)."""
    return {t.trial_id for t in results.trials
            if t.status == ENDED_STATUS and t.outcome is Outcome.KILLED and not t.error}


def budget_text(spec: Mapping[str, Any], trials_made: int, epochs_used: int) -> str:
    """How much of the budget is left: 'budget: 20 trials x 6 epochs; 12 made, 8 to make; 41 of
    120 trial-epochs used' (pure)."""
    budget = spec["budget"]
    trials, max_epochs = int(budget["trials"]), int(budget["max_epochs"])
    return (f"budget: {trials} trials x {max_epochs} epochs; {trials_made} made, "
            f"{max(0, trials - trials_made)} to make; {epochs_used} of {trials * max_epochs} "
            "trial-epochs used")

