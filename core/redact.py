"""Masking secrets (client keys, OAuth tokens, Authorization values) in text meant for humans."""

from __future__ import annotations

import logging
import re

MASK = "***redacted***"

SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bkl_[A-Za-z0-9_-]{8,}"),  # Kleis client keys
    re.compile(r"\bsk-ant-[a-z]{2,4}\d{2}-[A-Za-z0-9_-]{8,}"),  # Anthropic OAuth tokens
    re.compile(r"\bgh[opsu]_[A-Za-z0-9]{16,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{16,}"),
    re.compile(r"\btid=[^\s\"',]{8,}"),  # Copilot tokens
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWTs (ChatGPT tokens)
    re.compile(r"(?i)\b((?:bearer|token)\s+)[A-Za-z0-9._~+/=-]{12,}"),  # Authorization values
    re.compile(r"(?i)(\"(?:access_token|refresh_token|id_token|token|code_verifier)\"\s*:\s*\")[^\"]+"),
    re.compile(r"(?i)((?:access_token|refresh_token|id_token|code_verifier)=)[^&\s]+"),
)


def redact(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Defence in depth: no log line carries a key or token, whatever a caller formats into it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:  # tracebacks quote exception messages too
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction() -> None:
    """Attach the filter to every handler of the root logger (present and future ones via basicConfig)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
