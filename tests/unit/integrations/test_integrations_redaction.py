"""The redaction helper."""

from __future__ import annotations

import json

import pytest

from flagops.integrations import REDACTED, Redactor, is_secret_name


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("client_secret", True),
        ("refresh_token", True),
        ("DB_PASSWORD", True),
        ("credentials", True),
        ("private_key_id", True),
        ("calendar_id", False),
        ("time_zone", False),
        ("mock_mode", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_mapping_masks_by_name_and_scrubs_by_value() -> None:
    redactor = Redactor()
    config = {
        "api_key": "abcd-PLANTED-1234",
        "token_uri": "http://127.0.0.1:9/token",
        "nested": {"password": "pw-PLANTED-5678"},
        "note": "the key is abcd-PLANTED-1234",
    }
    redactor.add_from_mapping(config)
    shown = redactor.redact_mapping(config)
    assert shown["api_key"] == REDACTED
    assert shown["token_uri"] == REDACTED  # masked by name in dumps...
    assert shown["nested"] == {"password": REDACTED}
    assert shown["note"] == f"the key is {REDACTED}"
    # ...but a locator is not scrubbed from other text: error messages keep their URL.
    assert redactor.redact_text("POST http://127.0.0.1:9/token failed") == (
        "POST http://127.0.0.1:9/token failed"
    )
    assert "PLANTED" not in redactor.redact_text(json.dumps(config))


def test_shapes_are_scrubbed_without_registration() -> None:
    redactor = Redactor()
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    text = redactor.redact_text(
        f"key {pem} header Authorization: Bearer ya29.a0AfH6SMB and access_token=xyz123&x=1"
    )
    assert "MIIEvAIBAD" not in text and "ya29" not in text and "xyz123" not in text
    assert "Bearer ***" in text and "access_token=***&x=1" in text


def test_json_escaped_and_line_variants() -> None:
    redactor = Redactor()
    key = (
        "-----BEGIN PRIVATE KEY-----\nLINEONE-abcdefghijklmnop\nLINETWO-qrstuvwxyz012345\n-----END"
    )
    redactor.add_secret(key)
    assert "LINEONE" not in redactor.redact_text(json.dumps({"k": key}))
    assert "LINETWO" not in redactor.redact_text("parse error near LINETWO-qrstuvwxyz012345")


def test_short_values_are_not_scrubbed() -> None:
    redactor = Redactor(["on"])
    assert redactor.redact_text("connection on") == "connection on"


def test_describe_exception() -> None:
    redactor = Redactor(["s3cr3t-value"])
    assert (
        redactor.describe_exception(ValueError("bad s3cr3t-value")) == f"ValueError: bad {REDACTED}"
    )
