"""The `scheduler:` registry: each type is one entry, and everything the product says about a
scheduler is answered by its entry, decided there once.

An entry is the Pydantic model of its YAML section (its fields, bounds and defaults) and says,
as Syne Tune's schedulers say through `metadata()` and `Bracket.rungs`:

- `rungs(max_epochs)`: per bracket, the epochs below the budget at which it compares trials and
  may stop them (`validate`'s summary, the report's learning curves);
- `stop_tag`: what its early stops are called in the ledger, the record and MLflow
  (`stopped_by=asha`): the type's own name;
- `label`: what people call it ("stopped by ASHA" on the progress lines and in the report);
- `budget_problems(max_epochs)`: its rules across sections (ASHA's grace period within the
  budget);
- `trials_out(max_epochs, running)`: how many trials a search must keep out at once (running,
  waiting or paused) for it to work as designed, when `running` can run at once;
- `ray_class` and `ray_kwargs(max_epochs)`: the Ray Tune scheduler a launch runs, as data;
- `paused_hold_place`: whether a trial it paused still counts against the trials out (Tune's
  concurrency limit, as for HyperBand) or holds no place at all (promotion ASHA, PASHA: a launch
  then limits only the trials that run or wait to run, search.engine.limiter).

Why the entry describes the Ray scheduler instead of building it: the spec, the report and the
CLI read the registry, and none of them may load Ray (the layer table in README.md). Building
is `search.engine.schedulers.build_scheduler`'s one generic job: it imports the named class and
adds what every launch needs of a scheduler (the ledger is told of its early stops; ASHA's
state round-trips through the record). So a new type is one entry here: its Ray class must
decide in epochs (`TIME_ATTR`) and may pause trials (Tune resumes them from their per-epoch
checkpoint); it starts anew on resume unless the engine knows how to save that Ray class's
state exactly (`search.engine.schedulers.EXACT`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional, Sequence, Union

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from search.spec.params import STRICT
from search.spec.problems import Problem, Problems

# The result key a scheduler decides on: epochs, not Tune iterations. After a restore Tune's
# iteration counter and our epoch can differ, and the rungs must be in the budget's unit.
TIME_ATTR = "epoch"


class SchedulerEntry(BaseModel):
    """What every entry answers (see the module's docstring)."""

    model_config = STRICT
    type: str
    label: ClassVar[str]
    ray_class: ClassVar[str]  # import path of Ray Tune's scheduler class
    paused_hold_place: ClassVar[bool] = True
    # Whether its record's scheduler.json keeps `rungs` as brackets of [milestone, recorded]
    # pairs, the rungs as the search ran (search.engine.schedulers.RecordingASHA); another
    # entry's `rungs` there, if any, is its own state, and its rungs are `rungs()`.
    records_rungs: ClassVar[bool] = False
    # Whether it ranks trials by several objectives (a list `objective`): its Ray class then
    # takes `objectives`, (metric, mode) of each, and ranks a rung by non-dominated sorting
    # with a crowding tie-break (MO-ASHA, search.engine.pareto.order).
    several_objectives: ClassVar[bool] = False
    # The Ray class it runs with several objectives, where that is another one than `ray_class`.
    several_ray_class: ClassVar[Optional[str]] = None

    @property
    def stop_tag(self) -> str:
        return self.type

    def rungs(self, max_epochs: int) -> list[list[int]]:
        """Per bracket, the epochs below `max_epochs` at which trials are compared (and may be
        stopped); a bracket whose trials all run the budget has none."""
        return []

    def ray_kwargs(self, max_epochs: int) -> dict[str, Any]:
        return {}

    def ray_class_for(self, objectives: Sequence[tuple[str, str]]) -> str:
        """The import path of the Ray class a search of these objectives runs."""
        return (self.several_ray_class or self.ray_class) if len(objectives) > 1 \
            else self.ray_class

    def objective_kwargs(self, objectives: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """What its Ray class takes of several objectives: (metric, mode) of each, the primary
        first; nothing for one (Tune hands it the metric and mode)."""
        return {"objectives": [tuple(o) for o in objectives]} if len(objectives) > 1 else {}

    def budget_problems(self, max_epochs: int) -> list[Problem]:
        return []

    def within(self, budget: Any) -> "SchedulerEntry":
        """This section, or Problems naming each of its rules that `budget` (a `budget:`
        section, or None when that failed to validate) breaks: the body of the field validator
        of every model that holds a budget and a scheduler."""
        problems = self.budget_problems(budget.max_epochs) if budget is not None else []
        if problems:
            raise Problems(problems)
        return self

    def trials_out(self, max_epochs: int, running: int) -> int:
        """The trials a search keeps out at once (Tune's concurrency limit: running, waiting
        or paused) when `running` of them run at once. An asynchronous scheduler needs no
        more; a synchronous one fills each bracket with trials out together before it starts
        the next, and Ray's puts every new trial in a bracket whose trials have ended."""
        return running


class ASHA(SchedulerEntry):
    type: Literal["asha"] = "asha"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, ge=2)
    brackets: int = Field(1, ge=1)

    label: ClassVar[str] = "ASHA"
    ray_class: ClassVar[str] = "ray.tune.schedulers.AsyncHyperBandScheduler"
    records_rungs: ClassVar[bool] = True
    several_objectives: ClassVar[bool] = True
    several_ray_class: ClassVar[Optional[str]] = "search.engine.moasha.MOASHA"

    def ray_kwargs(self, max_epochs: int) -> dict[str, Any]:
        return dict(time_attr=TIME_ATTR, max_t=max_epochs, grace_period=self.grace_period,
                    reduction_factor=self.reduction_factor, brackets=self.brackets)

    def rungs(self, max_epochs: int) -> list[list[int]]:
        return [asha_rungs(self.grace_period, self.reduction_factor, s, max_epochs)
                for s in range(self.brackets)]

    def budget_problems(self, max_epochs: int) -> list[Problem]:
        if self.grace_period <= max_epochs:
            return []
        return [Problem("grace_period", self.grace_period, "grace_period is "
                        f"{self.grace_period} but must be <= budget.max_epochs ({max_epochs}); "
                        "no trial could be stopped early")]


def asha_rungs(grace: int, reduction: float, bracket: int, max_epochs: int) -> list[int]:
    """The epochs at which bracket `bracket` of Ray's ASHA compares trials: its milestones
    grace * reduction^(k + bracket), counted as Ray counts them (`async_hyperband._Bracket`), each
    reached at the first whole epoch at or past it, and only below the budget (at max_epochs a
    trial is done before any rung is read)."""
    count = int(math.log(max_epochs / grace) / math.log(reduction) - bracket + 1)
    epochs = (math.ceil(grace * reduction ** (k + bracket)) for k in range(count))
    return sorted(e for e in epochs if e < max_epochs)


class HyperBand(SchedulerEntry):
    """Ray's synchronous HyperBand: brackets of successive halving, each starting its trials at
    a smaller budget. A trial that reaches its bracket's rung before the others waits PAUSED
    (its slot goes to another trial) and goes on from its checkpoint if it is among the best
    1/reduction_factor when the last one arrives. A bracket's survivors stop at its last rung,
    which can fall below the budget: at max_epochs 10 and factor 3, a bracket compares at
    epochs 3 and 9, and its best trials stop at 9. A search keeps one more trial out at once
    than its largest bracket takes (`trials_out`), most of them waiting or paused."""

    type: Literal["hyperband"] = "hyperband"
    reduction_factor: float = Field(3.0, ge=2)

    label: ClassVar[str] = "Hyperband"
    ray_class: ClassVar[str] = "ray.tune.schedulers.HyperBandScheduler"

    def ray_kwargs(self, max_epochs: int) -> dict[str, Any]:
        return dict(time_attr=TIME_ATTR, max_t=max_epochs, reduction_factor=self.reduction_factor)

    def rungs(self, max_epochs: int) -> list[list[int]]:
        return [milestones for _, milestones in hyperband_brackets(max_epochs,
                                                                   self.reduction_factor)]

    def trials_out(self, max_epochs: int, running: int) -> int:
        # Ray opens the next bracket only for a trial added while the last one is full: with
        # no more out than a bracket takes, the first would take every trial, one by one.
        largest = max(size for size, _ in hyperband_brackets(max_epochs, self.reduction_factor))
        return max(running, largest + 1)


def hyperband_brackets(max_epochs: int, reduction: float) -> list[tuple[int, list[int]]]:
    """The brackets of Ray's `HyperBandScheduler`, in the order it fills them, each as (how many
    trials it takes, the milestones below the budget at which it halves them and, at the last,
    stops them), counted as Ray counts them (`HyperBandScheduler.__init__`,
    `_Bracket.successive_halving`): bracket s takes ceil(s_max/(s+1) * eta^s) trials, starts
    at int(max_t * eta^-s) epochs and multiplies by eta, capped at max_t; one that would start
    at 0 is skipped."""
    count = round(math.log(max_epochs) / math.log(reduction)) + 1  # np.round: half to even too
    brackets = []
    for s in range(count):
        milestone = int(max_epochs * reduction ** (-s))
        if milestone == 0:
            continue
        milestones = [milestone]
        for _ in range(s):
            milestone = int(min(milestone * reduction, max_epochs))
            milestones.append(milestone)
        size = math.ceil(count / (s + 1) * reduction ** s)
        brackets.append((size, [m for m in milestones if m < max_epochs]))
    return brackets


class PromotionASHA(SchedulerEntry):
    """Promotion-based ASHA (Li et al. 2020, Algorithm 2; search.engine.promotion): a trial that
    reaches a rung waits there, paused, holding no slot, until it is among the rung's top
    1/reduction_factor and a slot frees; then it goes on from its checkpoint, losing no epoch.
    Only when no trial is promotable does a new one start. Trials still waiting when the search
    ends are stopped (stopped_by=promotion_asha)."""

    type: Literal["promotion_asha"] = "promotion_asha"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, ge=2)

    label: ClassVar[str] = "promotion ASHA"
    ray_class: ClassVar[str] = "search.engine.promotion.PromotionASHA"
    several_objectives: ClassVar[bool] = True
    paused_hold_place: ClassVar[bool] = False

    def ray_kwargs(self, max_epochs: int) -> dict[str, Any]:
        return dict(time_attr=TIME_ATTR, max_t=max_epochs,
                    milestones=self.rungs(max_epochs)[0], reduction_factor=self.reduction_factor)

    def rungs(self, max_epochs: int) -> list[list[int]]:
        return [asha_rungs(self.grace_period, self.reduction_factor, 0, max_epochs)]

    def budget_problems(self, max_epochs: int) -> list[Problem]:
        return ASHA(grace_period=self.grace_period).budget_problems(max_epochs)


class PASHA(PromotionASHA):
    """PASHA (Bohdal et al., ICLR 2023; search.engine.promotion): promotion ASHA whose maximum
    budget starts at its second rung and grows a rung at a time only while the ranking of the
    trials in its two top rungs is unstable. Its rungs are promotion ASHA's; trials waiting at
    the top it reached when the search ends are stopped (stopped_by=pasha)."""

    type: Literal["pasha"] = "pasha"  # type: ignore[assignment]

    label: ClassVar[str] = "PASHA"
    ray_class: ClassVar[str] = "search.engine.promotion.PASHA"
    several_objectives: ClassVar[bool] = False  # its ranking test reads one value per trial


class DEHB(SchedulerEntry):
    """DEHB's brackets (Awad, Mallik, Hutter, IJCAI 2021; search.engine.dehb): with `sampler:
    {type: dehb}`, DEHB's own ask decides each trial's configuration *and* its epochs, one of
    the Hyperband budgets max_epochs * reduction_factor^-k down to `min_epochs`; this scheduler
    stops each trial at the epochs DEHB gave it (stopped_by=dehb) and decides nothing else. A
    configuration DEHB takes to a larger budget is a new trial, trained from its first epoch
    (as the paper's DEHB runs it): the epochs it spends are counted honestly, not saved."""

    type: Literal["dehb"] = "dehb"
    min_epochs: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, ge=2)

    label: ClassVar[str] = "DEHB"
    ray_class: ClassVar[str] = "search.engine.dehb.EpochsStopper"

    def ray_kwargs(self, max_epochs: int) -> dict[str, Any]:
        return dict(time_attr=TIME_ATTR)

    def rungs(self, max_epochs: int) -> list[list[int]]:
        # DEHB's brackets, in the order it opens them: bracket s runs the s+1 largest budgets.
        budgets = dehb_budgets(self.min_epochs, max_epochs, self.reduction_factor)
        return [[e for e in budgets[-s - 1:] if e < max_epochs]
                for s in reversed(range(len(budgets)))]

    def budget_problems(self, max_epochs: int) -> list[Problem]:
        if self.min_epochs < max_epochs:
            return []
        return [Problem("min_epochs", self.min_epochs, f"min_epochs is {self.min_epochs} but "
                        f"must be < budget.max_epochs ({max_epochs}): DEHB needs at least two "
                        "budgets")]


def dehb_fidelities(min_epochs: float, max_epochs: float, reduction: float) -> list[float]:
    """DEHB's budgets as the `dehb` package computes them (`DEHBBase._pre_compute_fidelity_
    spacing`): max * eta^-k for k = n-1 .. 0, n = 1 - int(log(min/max) / log(eta))."""
    count = -int(math.log(min_epochs / max_epochs) / math.log(reduction)) + 1
    return [max_epochs * reduction ** -(count - 1 - k) for k in range(count)]


def epochs_of(fidelity: float) -> int:
    """The whole epochs a trial trains for one of DEHB's (real-valued) budgets."""
    return max(1, round(fidelity))


def dehb_budgets(min_epochs: int, max_epochs: int, reduction: float) -> list[int]:
    """DEHB's budgets in whole epochs, smallest first."""
    return [epochs_of(f) for f in dehb_fidelities(min_epochs, max_epochs, reduction)]


class FIFO(SchedulerEntry):
    type: Literal["fifo"] = "fifo"

    label: ClassVar[str] = "FIFO"
    ray_class: ClassVar[str] = "ray.tune.schedulers.FIFOScheduler"
    several_objectives: ClassVar[bool] = True

    def objective_kwargs(self, objectives: Sequence[tuple[str, str]]) -> dict[str, Any]:
        return {}  # it compares nothing


# The registry: one entry per `scheduler.type`. The first is the default: promotion ASHA, as the
# 10-seed LCBench comparison and the digits replay chose it (bench/README.md §9, phase 3).
ENTRIES = (PromotionASHA, ASHA, HyperBand, FIFO, PASHA, DEHB)
SCHEDULERS: dict[str, type[SchedulerEntry]] = {
    entry.model_fields["type"].default: entry for entry in ENTRIES}
DEFAULT = ENTRIES[0]
# What a search of an earlier version ran where it recorded no scheduler (a record from before the
# `scheduler:` section, a pickled progress printer from before its label): ASHA, the default of
# every version before promotion ASHA.
LEGACY = ASHA

Scheduler = Annotated[Union[ENTRIES], Field(discriminator="type")]  # type: ignore[valid-type]
_SECTION: TypeAdapter = TypeAdapter(Scheduler)


def section(mapping: Optional[Mapping[str, Any]]) -> Optional[SchedulerEntry]:
    """The entry of a resolved spec's `scheduler` section (as a record keeps it), or None when
    it is not one this version knows (a report of a record from another version)."""
    try:
        return _SECTION.validate_python({"type": LEGACY().type, **(mapping or {})})
    except ValidationError:
        return None


def label_of(stop_tag: str) -> str:
    """What people call the scheduler whose early stops carry `stop_tag`."""
    entry = SCHEDULERS.get(stop_tag)
    return entry.label if entry is not None else stop_tag
