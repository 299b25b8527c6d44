"""Optuna inside Ray Tune: the sampler registry and the fidelity-aware `OptunaSearch`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import optuna
from ray.tune.search.optuna import OptunaSearch

from search.engine import compat, rung_sampler
from search.engine.dehb import DEHBSampler
from search.engine.distinct import Distinct
from search.engine.ledger import Ledger
from search.engine.rung_sampler import BOHBSampler
from search.engine.space import define_by_run, optuna_params, sample
from search.engine.trial_states import OPTUNA_STATE
from search.engine.warm import Knowledge, tell
from search.spec.objective import constraint_key, violation
from search.spec.points import order

if TYPE_CHECKING:
    from search.spec.model import Sampler, SearchSpec

# Each entry turns a validated `sampler:` section into an Optuna sampler instance. Those that take
# constraints read them from each told trial (`Trial.set_constraint`, Optuna >= 5).
SAMPLERS: dict[str, Callable[[Any], optuna.samplers.BaseSampler]] = {
    "tpe": lambda s: optuna.samplers.TPESampler(
        seed=s.seed, n_startup_trials=s.n_startup_trials, multivariate=s.multivariate,
        # `group` lets multivariate TPE model conditional parameters jointly per sub-space.
        group=s.multivariate, constant_liar=s.constant_liar),
    "gp": lambda s: optuna.samplers.GPSampler(seed=s.seed, n_startup_trials=s.n_startup_trials),
    "cmaes": lambda s: optuna.samplers.CmaEsSampler(
        seed=s.seed, n_startup_trials=s.n_startup_trials, sigma0=s.sigma0,
        warn_independent_sampling=False),
    "random": lambda s: optuna.samplers.RandomSampler(seed=s.seed),
    "nsga2": lambda s: optuna.samplers.NSGAIISampler(
        seed=s.seed, population_size=s.population_size, crossover_prob=s.crossover_prob,
        swapping_prob=s.swapping_prob),
    "nsga3": lambda s: optuna.samplers.NSGAIIISampler(
        seed=s.seed, population_size=s.population_size, crossover_prob=s.crossover_prob,
        swapping_prob=s.swapping_prob),
    "qmc": lambda s: optuna.samplers.QMCSampler(
        seed=s.seed, qmc_type=s.qmc_type, scramble=s.scramble, warn_independent_sampling=False),
    # BOHB's model: TPE at the highest rung with enough results, a random share (its budgets
    # are the search's rungs, set by build_searcher).
    "bohb": lambda s: BOHBSampler(
        seed=s.seed, random_fraction=s.random_fraction, min_points=s.min_points,
        multivariate=s.multivariate, constant_liar=s.constant_liar,
        n_ei_candidates=s.n_ei_candidates),
    # DEHB's own ask/tell: each trial's configuration and epochs (its budgets are the
    # `scheduler: dehb` section's, set by build_searcher).
    "dehb": lambda s: DEHBSampler(seed=s.seed, mutation_factor=s.mutation_factor,
                                  crossover_prob=s.crossover_prob, strategy=s.strategy),
}


def build_sampler(sampler_spec: Sampler) -> optuna.samplers.BaseSampler:
    return SAMPLERS[sampler_spec.type](sampler_spec)


def build_searcher(spec: SearchSpec, ledger: Ledger,
                   warm: Optional[Knowledge] = None) -> OptunaSearch:
    """The searcher a launch gives Tune, and the one `search.replay` drives without Ray's
    runtime: Optuna's sampler over the space's define-by-run function, told the truth about
    early-stopped trials (as the launch's `ledger` decides how each ended) and proposing no
    configuration twice (search.engine.distinct) unless the spec asks for stock Ray
    behaviour or a repeat study. `warm`: what earlier searches learnt
    (search/engine/warm.py), told to its study before it proposes anything."""
    sampler = build_sampler(spec.sampler)
    if isinstance(sampler, BOHBSampler):
        sampler.fit_budgets(budgets(spec), len(spec.space))
    # A warm start that narrowed the space (search/engine/narrow.py) samples the narrowed one;
    # Ray pickles it with the searcher, so a resumed or extended search keeps it.
    space = warm.space(spec.space) if warm is not None else spec.space
    if isinstance(sampler, DEHBSampler):  # the spec pairs it with `scheduler: dehb`
        sampler.fit(order(space), spec.scheduler.min_epochs, spec.budget.max_epochs,
                    spec.scheduler.reduction_factor)
    # Trials differ unless the spec asks for a repeat study (budget.repeat) or the sampler
    # repeats them by design (DEHB's promotions); stock Ray + Optuna repeat configurations.
    if spec.sampler.distinct and spec.sampler.stopped_trials != "complete" \
            and not spec.budget.repeat:
        sampler = Distinct(sampler, seed=spec.sampler.seed)
    several = spec.objective_pairs
    common = dict(space=define_by_run(space), sampler=sampler,
                  metric=[m for m, _ in several] if several else spec.objective.metric,
                  mode=[m for _, m in several] if several else spec.objective.mode)
    if spec.sampler.stopped_trials == "complete":
        searcher = OptunaSearch(**common)  # stock Ray behaviour, kept for comparison
    else:
        searcher = FidelityAwareOptunaSearch(
            **common, ledger=ledger, constraints=tuple(c.triple() for c in spec.constraints))
    if warm is not None:
        tell(compat.optuna_study(searcher), space, warm)
    return searcher


def budgets(spec: SearchSpec) -> list[int]:
    """The epochs at which the search's scheduler compares trials, and the full budget."""
    max_epochs = spec.budget.max_epochs
    return sorted({e for bracket in spec.scheduler.rungs(max_epochs) for e in bracket}
                  | {max_epochs})


class FidelityAwareOptunaSearch(OptunaSearch):
    """`OptunaSearch` that tells Optuna the truth about trials that did not run their budget.

    Intermediate values are reported per *epoch* (not per Tune iteration, which restarts count
    differently), non-finite values are kept out of the study, and the final state is the
    launch's ledger's decision (`search.engine.ledger`): PRUNED for a trial ASHA stopped early.
    Tune tells the searcher that a trial ended before it tells the callbacks, so the searcher
    is usually the one that has the ledger decide.
    """

    def __init__(self, *args: Any, ledger: Ledger,
                 constraints: Sequence[tuple[str, str, float]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = ledger
        self.define = kwargs.get("space")  # the DefineByRun: its space, for `adopt`
        self.constraints = tuple(constraints)

    def restore(self, checkpoint_path: str) -> None:
        # Ray restores a searcher by updating its __dict__ from the snapshot's pickle, which
        # holds an empty ledger of its own: keep the launch's (search.run.tuner.parts).
        ledger = self.ledger
        super().restore(checkpoint_path)
        self.ledger = ledger
        for stale in ("_scheduler_stops", "_last", "_max_epochs"):  # saved by resnet-search 0.2
            self.__dict__.pop(stale, None)

    def adopt(self, trial_id: str, config: dict) -> bool:
        """Take a trial Tune restored that this (restored) searcher never suggested as its own;
        False when it knows the trial. Ray uploads an experiment's snapshot file by file, the
        trials before the searcher, so a driver killed in between leaves trials whose
        suggestion the saved searcher lacks. From the state it kept, the sampler's next
        proposal is usually that very suggestion: taken, the search goes on exactly as
        before. Else (the lost suggestion followed results the snapshot lacks too) the
        proposal is failed in the study and the trial enters it with its own parameters, so
        its results are told; the sampler's state then differs from the lost one."""
        live, told = compat.optuna_trials(self), compat.told_trials(self)
        define = getattr(self, "define", None)  # None: pickled in a tuner.pkl before it existed
        if trial_id in live or trial_id in told or define is None:
            return False
        space = define.space
        params = {k: v for k, v in config.items() if k in space}
        if self.suggest(trial_id) == params:
            return True
        study = compat.optuna_study(self)
        if trial_id in live:
            study.tell(live.pop(trial_id), state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(optuna_params(space, params))
        live[trial_id] = study.ask()
        sample(space, live[trial_id])  # the queued values, with their distributions
        return True

    def epochs_for(self, trial_id: str) -> Optional[int]:
        """The epochs the sampler gave the trial, for a sampler that decides them (DEHB:
        search.engine.dehb.EpochsStopper stops the trial there); else None."""
        trial = compat.optuna_trials(self).get(trial_id)
        ask = getattr(compat.optuna_study(self).sampler, "epochs_of", None)
        return ask(trial.number) if trial is not None and ask is not None else None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        live = compat.optuna_trials(self)
        if trial_id in compat.told_trials(self) or trial_id not in live:
            return  # (not in live: a trial Tune restored that no searcher state knows)
        if isinstance(self.metric, list):
            # Optuna keeps no intermediate values for several objectives: each epoch's values
            # are a user attribute, what a rung model reads (search.engine.rung_sampler).
            values = [result.get(m) for m in self.metric]
            if all(v is not None and math.isfinite(v) for v in values):
                live[trial_id].set_user_attr(rung_sampler.values_key(result.get("epoch", 0)),
                                             [float(v) for v in values])
            return
        value = result.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        live[trial_id].report(value, result.get("epoch", 0))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        told, live = compat.told_trials(self), compat.optuna_trials(self)
        if trial_id in told or trial_id not in live:
            return
        end = self.ledger.end(trial_id, errored=error, last=result or None)
        state = OPTUNA_STATE[end.outcome]
        value = None
        if state == optuna.trial.TrialState.COMPLETE:
            value = [end.last.get(m) for m in self.metric] if isinstance(self.metric, list) \
                else end.last.get(self.metric)
            if isinstance(self.metric, list):  # its last epoch, as on_trial_result saves one
                self.on_trial_result(trial_id, end.last)
        if state != optuna.trial.TrialState.FAIL:  # (pickled before constraints: none)
            for metric, side, bound in getattr(self, "constraints", ()):
                live[trial_id].set_constraint(constraint_key(metric, side, bound),
                                              violation(end.last.get(metric), side, bound))
        compat.optuna_study(self).tell(live[trial_id], value, state=state)
        told.add(trial_id)
