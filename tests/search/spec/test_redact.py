"""Credentials in URIs are masked wherever they are shown."""

import logging

import pytest

from search.spec.redact import RedactSecrets, redact


@pytest.mark.parametrize("text, expected", [
    ("http://host:5000/?token=abc123&x=1", "http://host:5000/?token=***&x=1"),
    ("https://bob:hunter2@h.example/x", "https://bob:***@h.example/x"),
    ("https://tok3n@h.example/x", "https://***@h.example/x"),
    ("http://h/?api_key=K&page=2#top", "http://h/?api_key=***&page=2#top"),
    ("http://h/?access_token=a&Signature=b", "http://h/?access_token=***&Signature=***"),
    # An engine's message quoting the URL without its scheme.
    ("HTTPConnectionPool(host='h', port=5000): url: /api?token=SEKRIT (Caused by x)",
     "HTTPConnectionPool(host='h', port=5000): url: /api?token=*** (Caused by x)"),
    # Nothing secret: exactly as written.
    ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
    ("http://h:5000/#/experiments/1?searchFilter=x", "http://h:5000/#/experiments/1?searchFilter=x"),
    ("no uri here: token of appreciation", "no uri here: token of appreciation"),
])
def test_redact(text, expected):
    assert redact(text) == expected


def test_log_records_are_redacted_with_their_arguments():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "failed at %s: %s",
                               ("http://h/?token=SEKRIT", "refused"), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "failed at http://h/?token=***: refused"
