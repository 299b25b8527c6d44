"""Where an exported winner came from, kept in the exported spec's own comment header.

A comment keeps the export one file that `validate` and `launch` read as any spec (YAML ignores
comments), and a person reads first. The provenance block is YAML behind "# ", so `retrain`
reads it back exactly as it was written:

    # provenance:
    #   experiment: digits-resnet
    #   trial_id: 28ac2a79
    #   ...
"""

from __future__ import annotations

from typing import Any, Optional

import yaml

MARK = "provenance:"
_PREFIX = "# "


def header(intro: list[str], provenance: dict[str, Any]) -> str:
    """The comment lines that open an exported spec: `intro` (one line each), then the
    provenance mapping as commented YAML. Ends with a newline."""
    block = yaml.safe_dump({MARK[:-1]: provenance}, sort_keys=False, allow_unicode=True,
                           width=10**6)  # no folding: each value stays on its line
    lines = [*intro, "", *block.splitlines()]
    return "".join(f"{_PREFIX}{line}".rstrip() + "\n" for line in lines)


def read_provenance(text: str) -> Optional[dict[str, Any]]:
    """The provenance block of a spec's leading comments, or None when it has none (a spec
    written by hand) or the block is not a mapping (edited beyond reading)."""
    block: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break  # the header ends at the first line of YAML
        body = line[len(_PREFIX):] if line.startswith(_PREFIX) else line[1:]
        if block or body == MARK:
            if block and not body.startswith(" "):
                break  # the block ended
            block.append(body)
    if not block:
        return None
    try:
        found = yaml.safe_load("\n".join(block))
    except yaml.YAMLError:
        return None
    value = found.get(MARK[:-1]) if isinstance(found, dict) else None
    return value if isinstance(value, dict) else None
