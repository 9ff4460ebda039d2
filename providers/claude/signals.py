"""What Claude's error answers say about the account: Claude-Code-only credentials, version floors, limits."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from providers.base import Signal, classify_by_status
from providers.protocol import error_message_of

CLAUDE_CODE_ONLY = "only authorized for use with claude code"
VERSION_TOO_OLD = "claude_code_version_too_old"
FAST_MODE_CREDITS = "usage credits are required for fast mode"
OUT_OF_EXTRA_USAGE = "out of extra usage"
UNIFIED_RESET = "anthropic-ratelimit-unified-reset"
_REQUIRED_VERSION = re.compile(r"version (\d+\.\d+\.\d+) or newer is required", re.IGNORECASE)


def classify(status: int, headers: Mapping[str, str], body: Any) -> Signal:
    if status < 400:
        return Signal("ok")
    message = error_message_of(body) or ""
    lowered = message.lower()
    if CLAUDE_CODE_ONLY in lowered:
        return Signal("request", "credential only authorized for Claude Code: the request did not pass as Claude Code", account_wide=False)
    if _mentions_version_floor(body, lowered):
        required = _REQUIRED_VERSION.search(message)
        floor = f" (needs {required.group(1)} or newer)" if required else ""
        return Signal("version", f"Claude Code version too old for this model{floor}: raise KLEIS_CLAUDE_CODE_VERSION", account_wide=False)
    if status == 429 and FAST_MODE_CREDITS in lowered:
        return Signal("rate_limit", "fast mode needs usage credits (this request only)", account_wide=False)
    if status == 429:
        reset_at = unified_reset(headers)
        if reset_at is not None:
            return Signal("rate_limit", "Claude subscription usage limit reached (429)", reset_at=reset_at)
    if status == 400 and OUT_OF_EXTRA_USAGE in lowered:
        return Signal("request", "refused as a third-party client (400 'out of extra usage')", account_wide=False)
    return classify_by_status(status, headers)


def _mentions_version_floor(body: Any, lowered_message: str) -> bool:
    if VERSION_TOO_OLD in lowered_message or ("does not support this model" in lowered_message and "claude code" in lowered_message):
        return True
    try:
        return VERSION_TOO_OLD in json.dumps(body)
    except (TypeError, ValueError):
        return False


def unified_reset(headers: Mapping[str, str]) -> float | None:
    """`anthropic-ratelimit-unified-reset`: unix seconds when the subscription window reopens."""
    value = next((v for k, v in headers.items() if k.lower() == UNIFIED_RESET), None)
    if not value:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    return reset / 1000 if reset > 1e11 else reset
