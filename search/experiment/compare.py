"""Two searches side by side (`resnet-search compare`): what differs between their winners.

Pure: the winners' full resolved configs in (TrialRecord.config, as `export-best` writes them),
the fields that differ out. The rest of a comparison is each experiment's `Summary`.
"""

from __future__ import annotations

from typing import Any, Optional

MISSING = None  # a field one config lacks (a config of an older version) reads as null


def config_diff(a: Optional[dict[str, Any]], b: Optional[dict[str, Any]]) -> dict[str, list]:
    """{field: [value in a, value in b]} for every field whose values differ, in a's order then
    b's; {} when either has no winner (nothing to compare)."""
    if not a or not b:
        return {}
    keys = list(dict.fromkeys([*a, *b]))
    return {k: [a.get(k, MISSING), b.get(k, MISSING)] for k in keys
            if a.get(k, MISSING) != b.get(k, MISSING)}
