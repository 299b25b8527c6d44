"""What every trial of one search shares, as plain data: sent to each worker once.

Workers build a trial's `TrainConfig` from it with the schema's pure checks, so a worker needs
neither Pydantic nor the spec classes: only `resnet_core` and this package's pure modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from resnet_core.config import DataConfig, TrainConfig
from search.spec import objective, schema


@dataclass(frozen=True)
class TrialJob:
    fixed: dict[str, Any]  # the spec's `fixed` section, validated
    max_epochs: int  # budget.max_epochs: every trial's `epochs`
    metric: str  # the objective
    mode: str
    data: DataConfig = field(default_factory=DataConfig)  # its root made absolute by the launch
    # Several objectives: (metric, mode) of each, the primary (`metric`, `mode`) first; () for
    # one. Constraints: (metric, "max"/"min", bound) of each (search.spec.objective.violation).
    objectives: tuple[tuple[str, str], ...] = ()
    constraints: tuple[tuple[str, str, float], ...] = ()

    def train_config(self, params: dict, registries: bool = True) -> TrainConfig:
        """One trial's config: fixed, then sampled params, then epochs from the budget. A value
        no distribution of a valid spec produces raises ValueError naming field and rule.
        `registries=False` trusts registry names (block, optimizer...) without importing
        torch to check them: for reading back what a worker already ran."""
        merged = {**self.fixed, **params, "epochs": self.max_epochs}
        known = set(schema.fields_of(TrainConfig))
        reasons = [schema.unknown_field(k) for k in merged if k not in known]
        reasons += [r for k, v in merged.items() if k in known and (
            r := schema.check_value(k, v, registries=registries)) is not None]
        if reasons:
            raise ValueError("; ".join(reasons))
        return TrainConfig(**{k: schema.coerce(k, v) for k, v in merged.items()})

    @property
    def all_objectives(self) -> tuple[tuple[str, str], ...]:
        """(metric, mode) of every objective, the primary first (one for a single one)."""
        return self.objectives or ((self.metric, self.mode),)

    def reads(self, metric: str) -> bool:
        """Whether an objective or a constraint of the search reads `metric` (a trial measures
        its inference latency only then: it costs seconds of its first epoch)."""
        return any(m == metric for m, _ in self.all_objectives) or any(
            m == metric for m, _, _ in self.constraints)

    def worst(self) -> float:
        """The objective's value for a trial that produced no model."""
        return objective.worst(self.mode)
