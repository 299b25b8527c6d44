"""What a trial's MLflow run shows people: its name, and its sampled numbers as metrics.

Pure functions. MLflow keeps params as strings, which sort as text (6.2e-05 after 0.0011) and
cannot be filtered as numbers, so every sampled number is also a metric under `HP_PREFIX`:
`metrics.\\`hp.lr\\` > 0.1` filters, and the runs table sorts it as a number.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Optional

from mlflow.entities import Metric

HP_PREFIX = "hp."  # a sampled number as a metric: hp.lr, hp.weight_decay (step 0)
# A trial run's tags: how many epochs it trained (not `epochs`: that param is its configured
# budget), and "true" on the winning trial's own run, on no other run of the search.
EPOCHS_TAG = "epochs_trained"
BEST_TAG = "best"
# On the runs of the trials on the Pareto front of a search of several objectives ("true"),
# moved as the front moves.
PARETO_TAG = "pareto"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag of a nested run: its parent run
# The prefix of a retrain's tags that point at the search it came from (search/winner): its
# `RETRAIN_TAG.parent_run_id` is the search's parent run, which `rm --mlflow` follows.
RETRAIN_TAG = "retrain_of"
NAME_LIMIT = 40  # characters: MLflow's runs table shows about this much of a name
_NUMBER = re.compile(r"^t(\d+)(?:\s|$)")


def run_name(number: int, sampled: Mapping[str, Any], limit: int = NAME_LIMIT) -> str:
    """`t007 basic/add/cosine`: the trial's number in start order, then the values its sampled
    choices took, by parameter name (block, residual, schedule): the same name from a trial's
    config however it was read back. Numbers are left to the `hp.` metrics (a bare `56` or
    `0.031` means nothing without its name); a sampled flag shows as `name=on` / `name=off`.
    Whole values are added while the name fits in `limit` characters; `…` says some were
    left out."""
    head = f"t{number:03d}"
    words = [word for key, value in sorted(sampled.items()) if (word := _word(key, value))]
    if not words:
        return head
    if len(full := f"{head} {'/'.join(words)}") <= limit:
        return full
    kept: list[str] = []
    for word in words:
        if len(f"{head} {'/'.join([*kept, word, '…'])}") > limit:
            break
        kept.append(word)
    return f"{head} {'/'.join([*kept, '…'])}"


def _word(key: str, value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return f"{key}={'on' if value else 'off'}"
    if isinstance(value, str):
        return value.rstrip("/").rsplit("/", 1)[-1]  # a file (pretrained): its name
    return None  # numbers are metrics; a list-valued choice (milestones) is too long


def number_of(name: Optional[str]) -> Optional[int]:
    """The trial number of a run named by `run_name`, or None for another name."""
    found = _NUMBER.match(name or "")
    return int(found.group(1)) if found else None


def numeric(sampled: Mapping[str, Any]) -> dict[str, float]:
    """The sampled values that are finite numbers (a flag or a list is not one)."""
    return {k: float(v) for k, v in sampled.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def hp_metrics(sampled: Mapping[str, Any], timestamp_ms: int) -> list[Metric]:
    """Every sampled number as the metric `hp.<name>` at step 0."""
    return [Metric(f"{HP_PREFIX}{k}", v, timestamp_ms, 0) for k, v in numeric(sampled).items()]


def logged_params(config: Mapping[str, Any], sampled: Mapping[str, Any],
                  conditional: frozenset[str] | set[str]) -> dict[str, Any]:
    """A trial's resolved config as it is logged: everything a rerun needs, except conditional
    parameters the trial did not sample. Such a field keeps its default in the config, but
    showing it would say the trial tried that value (residual_scale = 1.0 on an `add` trial)
    and draw false lines in MLflow's parallel coordinates."""
    return {k: v for k, v in config.items() if k not in conditional or k in sampled}
