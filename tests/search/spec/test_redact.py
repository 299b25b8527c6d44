"""Credentials in URIs are masked wherever they are shown."""

import logging

import pytest

from search.spec.redact import (RedactSecrets, masked, missing_secret, redact, restored,
                                spec_at_rest)


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


# --- at rest: masked in the files, given back from MLFLOW_TRACKING_URI ------------------------

FULL = "postgresql+psycopg2://h:5432/mlflow?user=u&password=S3CRET"
MASKED = "postgresql+psycopg2://h:5432/mlflow?user=u&password=***"


@pytest.mark.parametrize("uri, is_masked", [
    (MASKED, True), ("https://bob:***@h/x", True), ("http://h/?token=***", True),
    (FULL, False), ("sqlite:////abs/mlflow.db", False), ("http://h:5000", False),
])
def test_a_masked_uri_is_told_from_a_full_one(uri, is_masked):
    assert masked(uri) is is_masked


@pytest.mark.parametrize("environ, expected", [
    ({"MLFLOW_TRACKING_URI": FULL}, FULL),  # the same URI with its secret: given back
    ({"MLFLOW_TRACKING_URI": FULL.replace("h:5432", "other:5432")}, MASKED),  # another store
    ({"MLFLOW_TRACKING_URI": MASKED}, MASKED),  # no secret there either
    ({}, MASKED),
])
def test_a_masked_uri_gets_its_secret_back_from_mlflows_variable(environ, expected):
    assert restored(MASKED, environ) == expected
    assert restored(FULL, environ) == FULL and restored("sqlite:///m.db", environ) == "sqlite:///m.db"


def test_a_uri_still_masked_says_where_to_give_the_secret():
    assert missing_secret(FULL) is None
    said = missing_secret(MASKED)
    assert MASKED in said and "MLFLOW_TRACKING_URI" in said and "S3CRET" not in said


def test_a_spec_at_rest_holds_its_uri_masked_and_nothing_else_changed():
    resolved = {"name": "x", "tracking": {"mlflow_uri": FULL, "experiment": "e"}, "fixed": {}}
    assert spec_at_rest(resolved) == {**resolved, "tracking": {"mlflow_uri": MASKED,
                                                               "experiment": "e"}}
    assert resolved["tracking"]["mlflow_uri"] == FULL  # a copy
