"""Secrets are never echoed: what a URI carries as a password or a token is masked in every
message, log line and MLflow tag that shows it.

A spec may not hold credentials (`user:pass@` is refused; use MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD), but a tracking server's URL may still carry a token in its query, and
an engine's error message may repeat the URL it failed on.
"""

from __future__ import annotations

import logging
import re

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
