"""Secrets are never echoed: what a URI carries as a password or a token is masked in every
message, log line and MLflow tag that shows it, and in every file the product writes.

A spec may not hold credentials (`user:pass@` is refused; use MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD), but a tracking URI may still carry one in its query (a database
password: `postgresql://host/db?user=u&password=...`), and an engine's error message may repeat
the URI it failed on.

At rest (the experiment record, its spec.json, Ray's pickled tuner, an exported best.yaml) the
URI is kept masked (`password=***`): those files sit on shared storage, travel, and outlive the
secret. The spec file the user wrote is where the secret lives. A command that has only a masked
URI (given an experiment directory, or an export) gets it back from MLFLOW_TRACKING_URI, MLflow's
own variable, when that is the same URI with its secret (`restored`).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Mapping, Optional

MASK = "***"
_SECRET = r"(?:token|secret|passw(?:or)?d|pwd|key|auth|signature|sig|credential)"
# `?name=value` / `&name=value` where the name says the value is a secret, in a URI or in an
# engine's message that quotes one without its scheme ("url: /api?token=...").
_QUERY = re.compile(rf"([?&][^=&\s'\"]*{_SECRET}[^=&\s'\"]*=)"
                    r"([^&\s'\"#,;()]+?)(?=$|[&\s'\"#,;()]|:\s|:$)", re.IGNORECASE)
_USERINFO = re.compile(r"(://)([^/@\s'\"]+)@")


def _userinfo(match: re.Match) -> str:
    user, sep, _ = match.group(2).partition(":")
    return f"{match.group(1)}{user}:{MASK}@" if sep else f"{match.group(1)}{MASK}@"


def redact(text: str) -> str:
    """`text` with the user info of every URI and every secret query value masked; the rest
    exactly as written."""
    return _QUERY.sub(lambda m: m.group(1) + MASK, _USERINFO.sub(_userinfo, text))


class RedactSecrets(logging.Filter):
    """A log filter that redacts URIs in a record's message (arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# MLflow's variable for the tracking URI: where a masked URI's secret comes back from.
URI_VARIABLE = "MLFLOW_TRACKING_URI"


def masked(uri: str) -> bool:
    """Whether `uri` is a URI whose secret was masked (as the files keep it)."""
    return (any(m.group(2) == MASK for m in _QUERY.finditer(uri))
            or any(m.group(2).partition(":")[2] == MASK or m.group(2) == MASK
                   for m in _USERINFO.finditer(uri)))


def restored(uri: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """A masked URI with its secret back from MLFLOW_TRACKING_URI when that is the same URI
    (masked alike); any other URI, or one the environment does not complete, unchanged."""
    if not masked(uri):
        return uri
    full = (os.environ if environ is None else environ).get(URI_VARIABLE, "")
    return full if full and not masked(full) and redact(full) == uri else uri


def missing_secret(uri: str) -> Optional[str]:
    """Why `uri` cannot be used (its secret is masked and nothing gave it back), or None."""
    if not masked(uri):
        return None
    return (f"the tracking URI {uri} keeps its secret out of the files; give the spec file that "
            f"holds it, or set {URI_VARIABLE} to the full URI")


def spec_at_rest(resolved: dict) -> dict:
    """A resolved spec as it may be written down: its tracking URI masked."""
    tracking = resolved.get("tracking")
    if not isinstance(tracking, dict) or not isinstance(tracking.get("mlflow_uri"), str):
        return resolved
    return {**resolved, "tracking": {**tracking, "mlflow_uri": redact(tracking["mlflow_uri"])}}
