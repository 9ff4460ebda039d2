"""Redaction of secrets in text shown to humans (logs, the debug UI)."""

from __future__ import annotations

import logging

from core.redact import MASK, RedactingFilter, redact


def test_each_secret_shape_is_masked() -> None:
    samples = {
        "key kl_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd in text": "kl_AbCdEfGh",
        "anthropic sk-ant-oat01-abcdefghijklmnop": "sk-ant-oat01-abcdefgh",
        "refresh sk-ant-ort01-QRSTUVWXYZ012345": "QRSTUVWXYZ",
        "github gho_abcdefghijklmnopqrstuvwxyz": "gho_abcdefgh",
        "copilot tid=abc123def456;exp=1;sku=x": "tid=abc123def",
        "jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig-nature": "eyJzdWIiOiIx",
        "Authorization: Bearer some-opaque-token-value-123": "some-opaque-token",
        '{"access_token": "abc", "refresh_token":"def"}': '"abc"',
        "grant_type=refresh_token&refresh_token=zzzzzz&client_id=x": "zzzzzz",
    }
    for text, secret_part in samples.items():
        cleaned = redact(text)
        assert secret_part not in cleaned, cleaned
        assert MASK in cleaned
    assert redact("Authorization: Bearer abcdefghijklmnop") == f"Authorization: Bearer {MASK}"
    assert redact("nothing secret here: model claude-sonnet-4-5") == "nothing secret here: model claude-sonnet-4-5"


def test_log_records_are_cleaned_whatever_the_caller_formats() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "refresh failed for %s", ("sk-ant-ort01-LEAKLEAKLEAK123",), None)
    assert RedactingFilter().filter(record)
    assert "LEAKLEAK" not in record.getMessage() and MASK in record.getMessage()
