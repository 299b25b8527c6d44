"""DEHB (Awad, Mallik, Hutter, "DEHB: Evolutionary Hyperband for Scalable, Robust and Efficient
Hyperparameter Optimization", IJCAI 2021) in a launch and in the replay: the `dehb` package's
own ask/tell, inside its own Hyperband brackets, as an Optuna sampler with a scheduler that
stops each trial at the epochs DEHB gave it (`sampler: {type: dehb}` with `scheduler: {type:
dehb}`, search.spec.schedulers.DEHB).

DEHB decides two things per trial, where the other samplers decide one: the configuration and
the budget. `DEHBSampler.before_trial` asks DEHB for both when Optuna opens a trial; the
configuration is DEHB's vector in [0, 1]^d, decoded parameter by parameter as Optuna asks for
each (so the space's conditions and list-valued choices work as with every sampler); the budget
is read by `EpochsStopper` through the searcher (`FidelityAwareOptunaSearch.epochs_for`) and
the trial stops there, as ASHA's stops, PRUNED in Optuna with its per-epoch values. When Optuna
closes the trial, DEHB is told the value at its budget (a failure as the worst) for the
parameters the trial really had (a queued trial's are not DEHB's), and its cost in epochs.

Ray pickles the searcher with its study and this sampler, so a resumed search keeps DEHB's
populations and brackets. The package's loguru handlers (stdout at import, a log file per
optimizer) are removed: a launch prints its own lines, and writes nothing to the user's
directory.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from typing import Any, Optional, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.engine.rung_sampler import value_at
from search.spec.schedulers import TIME_ATTR, epochs_of


def _silenced() -> None:
    """No loguru handler of DEHB's: its import points loguru at stdout."""
    from loguru import logger
    logger.remove()


def _dehb(**kwargs: Any) -> Any:
    """The package's optimizer, without its stdout handler or its log file (its constructor
    creates one in `output_path`: a scratch folder, removed)."""
    from dehb import DEHB  # imports dask's distributed: only a DEHB search pays for it
    scratch = tempfile.mkdtemp(prefix="resnet-search-dehb-")
    try:
        return DEHB(**kwargs, output_path=scratch)
    finally:
        _silenced()
        shutil.rmtree(scratch, ignore_errors=True)


# What DEHB is told of a trial without a value (failed, diverged). Finite: DEHB counts a
# configuration as evaluated when its fitness is not inf, and when no configuration of a budget is,
# its next promotion from that budget raises IndexError (dehb 0.1.1, `_get_promotion_candidate`).
WORST = float(np.finfo(float).max)


# --- one parameter <-> one coordinate of DEHB's unit hypercube (table-tested) ---

def decode(distribution: BaseDistribution, u: float) -> Any:
    """The value coordinate `u` in [0, 1] stands for, as the `dehb` package maps ConfigSpace
    hyper-parameters: linear (logarithmic for a log range) between the bounds, on the step's
    grid; a categorical by the n equal parts of [0, 1]."""
    u = min(max(float(u), 0.0), 1.0)
    if isinstance(distribution, CategoricalDistribution):
        choices = distribution.choices
        return choices[min(int(u * len(choices)), len(choices) - 1)]
    low, high = float(distribution.low), float(distribution.high)
    if distribution.log:
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        value = low + u * (high - low)
    step = distribution.step
    if isinstance(distribution, IntDistribution):
        step = step or 1
        value = low + round((value - low) / step) * step
        return int(min(max(value, low), high))
    if step is not None:
        value = low + round((value - low) / step) * step
    return float(min(max(value, low), high))


def encode(distribution: BaseDistribution, value: Any) -> float:
    """The coordinate in [0, 1] of `value` (`decode`'s inverse on its grid)."""
    if isinstance(distribution, CategoricalDistribution):
        return (distribution.choices.index(value) + 0.5) / len(distribution.choices)
    low, high = float(distribution.low), float(distribution.high)
    if high == low:
        return 0.5
    if distribution.log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (float(value) - low) / (high - low)


class DEHBSampler(optuna.samplers.BaseSampler):
    """The `dehb` package's DEHB as an Optuna sampler (see the module's docstring). `fit` gives
    it the space's parameters and the budgets before the first trial (build_searcher)."""

    def __init__(self, *, seed: Optional[int] = None, mutation_factor: float = 0.5,
                 crossover_prob: float = 0.5, strategy: str = "rand1_bin") -> None:
        self.seed, self.de = seed, dict(mutation_factor=mutation_factor,
                                        crossover_prob=crossover_prob, strategy=strategy)
        self.names: list[str] = []
        self.optimizer: Any = None  # dehb.DEHB, made by `fit`
        self.jobs: dict[int, dict] = {}  # Optuna trial number -> DEHB's job, until told
        self.epochs: dict[int, int] = {}  # Optuna trial number -> the epochs DEHB gave it
        self._fallback = optuna.samplers.RandomSampler(seed=seed)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.optimizer is not None:  # DEHB pickles without its logger
            from loguru import logger
            self.optimizer.logger = logger
            _silenced()

    def fit(self, names: Sequence[str], min_epochs: int, max_epochs: int,
            reduction_factor: float) -> None:
        """DEHB over the space's parameters (one coordinate each, in `names`' order) and the
        budgets min_epochs .. max_epochs, spaced by reduction_factor."""
        self.names = list(names)
        self.optimizer = _dehb(dimensions=max(1, len(self.names)), configspace=False,
                               min_fidelity=min_epochs, max_fidelity=max_epochs,
                               eta=reduction_factor, n_workers=1, seed=self.seed,
                               save_freq="end", **self.de)

    def epochs_of(self, number: int) -> Optional[int]:
        """The epochs DEHB gave Optuna trial `number` (None: a trial it did not ask for)."""
        return self.epochs.get(number)

    # --- Optuna's sampler interface ---
    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.optimizer is None:
            return
        job = self.optimizer.ask()
        self.jobs[trial.number] = job
        self.epochs[trial.number] = epochs_of(job["fidelity"])

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        job = self.jobs.get(trial.number)
        if job is None or param_name not in self.names:
            return self._fallback.sample_independent(study, trial, param_name,
                                                     param_distribution)
        return decode(param_distribution, job["config"][self.names.index(param_name)])

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Optional[Sequence[float]]) -> None:
        job = self.jobs.pop(trial.number, None)
        if job is None:
            return
        # DEHB learns from what the trial was: a queued trial's parameters are not its vector.
        config = np.array(job["config"], dtype=float)
        for index, name in enumerate(self.names):
            if name in trial.params:
                config[index] = encode(trial.distributions[name], trial.params[name])
        value, epochs = told_value(trial, state, values, self.epochs[trial.number])
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        fitness = sign * value if value is not None else WORST  # DEHB minimises
        self.optimizer.tell({**job, "config": config}, {"fitness": fitness, "cost": epochs})


def told_value(trial: FrozenTrial, state: TrialState, values: Optional[Sequence[float]],
               budget: int) -> tuple[Optional[float], int]:
    """What DEHB is told of a closed trial (pure): its value at its budget (None when it did
    not get there: it failed, diverged or was cut short) and the epochs it trained. Optuna
    calls `after_trial` before it stores the state and value, hence both as arguments."""
    epochs = max(trial.intermediate_values, default=0)
    if state == TrialState.FAIL:
        return None, epochs
    value = value_at(trial, budget)
    if value is None and state == TrialState.COMPLETE and values and epochs == budget \
            and math.isfinite(values[0]):
        value = float(values[0])
    return value, epochs


def epochs_for(tune_controller: Any, trial_id: str) -> Optional[int]:
    """The epochs the searcher Tune holds gave `trial_id`, found through the layers Tune wraps
    it in (the budget's generator, the concurrency limiter)."""
    layer = getattr(tune_controller, "search_alg", None)
    while layer is not None:
        ask = getattr(layer, "epochs_for", None)
        if ask is not None:
            return ask(trial_id)
        layer = getattr(layer, "searcher", None)
    return None


class EpochsStopper(FIFOScheduler):
    """Stops each trial at the epochs its searcher gave it (DEHB's budget); otherwise FIFO."""

    def __init__(self, time_attr: str = TIME_ATTR) -> None:
        super().__init__()
        self.time_attr = time_attr

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        budget = epochs_for(tune_controller, trial.trial_id)
        if budget is not None and int(result.get(self.time_attr, 0)) >= budget:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
