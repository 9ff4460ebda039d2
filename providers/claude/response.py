"""Claude's answers for the caller: tool names restored (JSON and SSE events), and what errors say about the account."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from core.client_errors import error_message_of
from core.enums import SignalKind
from core.sse import SSEEvent, format_event
from providers.base import Signal, classify_by_status
from providers.claude.tools import ToolNames, restore_blocks

BLOCK_START = "content_block_start"


def restore_body(names: ToolNames | None, body: Any) -> Any | None:
    """A Messages body with tool_use names restored, or None when nothing was renamed."""
    if names is None or not names.renamed or not isinstance(body, dict) or not isinstance(body.get("content"), list):
        return None
    return body if restore_blocks(body["content"], names) else None


def tool_name_restorer(names: ToolNames | None) -> Callable[[SSEEvent], bytes | None] | None:
    """Per event: new bytes for a content_block_start that names a renamed tool, else None (bytes pass as they are).

    Tool names appear in a stream only in content_block_start: a tool_use's `name`, or tool_reference
    blocks inside a server tool's result. Deltas carry arguments and text, never names.
    """
    if names is None or not names.renamed:
        return None
    renamed = names.renamed

    def restore(event: SSEEvent) -> bytes | None:
        if event.event != BLOCK_START and (event.event is not None or BLOCK_START.encode() not in event.raw):
            return None
        data = event.json()
        if not isinstance(data, dict) or data.get("type") != BLOCK_START or not isinstance(data.get("content_block"), dict):
            return None
        block = data["content_block"]
        if block.get("type") == "tool_use":
            name = block.get("name")
            original = renamed.get(name) if isinstance(name, str) else None
            if original is None:
                return None
            block["name"] = original
        elif b"tool_reference" not in event.raw or not restore_blocks([block], names):
            return None
        return format_event(data, event.event)

    return restore


# -- errors ----------------------------------------------------------------------------------------

CLAUDE_CODE_ONLY = "only authorized for use with claude code"
# 400 {"error": {"type": "invalid_request_error", "message": "Claude Code 2.1.224 does not support this model; version
# 2.1.251 or newer is required. Run 'claude update', …", "details": {"error_code": "claude_code_version_too_old"}}}
# (paoloanzn/pi-black#6, openclaw/openclaw#154016, 2026-09).
VERSION_TOO_OLD = "claude_code_version_too_old"
FAST_MODE_CREDITS = "usage credits are required for fast mode"
OUT_OF_EXTRA_USAGE = "out of extra usage"
# Since 2026-04 Anthropic bills third-party traffic on subscription accounts to extra usage: 400 "Third-party apps now
# draw from your extra usage, not your plan limits. …" (ianjwhite99/opencode-with-claude#91, elidickinson/pi-claude-bridge#49),
# and long-context requests get 429 "Extra usage is required for long context requests." (anthropics/claude-code#42616).
THIRD_PARTY_EXTRA_USAGE = "third-party apps now draw from"
LONG_CONTEXT_EXTRA_USAGE = "extra usage is required for long context"
UNIFIED_RESET = "anthropic-ratelimit-unified-reset"
_REQUIRED_VERSION = re.compile(r"version (\d+\.\d+\.\d+) or newer is required", re.IGNORECASE)

# What Kleis records on an account whose third-party traffic Claude bills to extra usage (admin, `accounts show`).
EXTRA_USAGE_NOTE = {"third_party_billing": "extra_usage"}
THIRD_PARTY_LABEL = "third_party_extra_usage: Claude bills this account's third-party traffic to extra usage"
OUT_OF_EXTRA_LABEL = "third_party_extra_usage: the account's extra usage, which third-party traffic draws from, is used up"
LONG_CONTEXT_LABEL = "long_context_extra_usage: Claude requires extra usage for long context"


def classify(status: int, headers: Mapping[str, str], body: Any) -> Signal:
    if status < 400:
        return Signal(SignalKind.OK)
    message = error_message_of(body) or ""
    lowered = message.lower()
    if CLAUDE_CODE_ONLY in lowered:
        return Signal(
            SignalKind.REQUEST, "credential only authorized for Claude Code: the request did not pass as Claude Code", account_wide=False
        )
    if _mentions_version_floor(body, lowered):
        return Signal(SignalKind.VERSION, version_label(required_version(message)), account_wide=False)
    billing = billing_lane(status, lowered)
    if billing is not None:
        return billing
    if status == 429 and FAST_MODE_CREDITS in lowered:
        return Signal(SignalKind.RATE_LIMIT, "fast mode needs usage credits (this request only)", account_wide=False)
    if status == 429:
        reset_at = unified_reset(headers)
        if reset_at is not None:
            return Signal(SignalKind.RATE_LIMIT, "Claude subscription usage limit reached (429)", reset_at=reset_at)
    return classify_by_status(status, headers)


def billing_lane(status: int, lowered_message: str) -> Signal | None:
    """Refusals about the lane Claude bills a request to: the request's business, never the account's health."""
    if THIRD_PARTY_EXTRA_USAGE in lowered_message and "extra usage" in lowered_message:
        return Signal(SignalKind.REQUEST, f"{THIRD_PARTY_LABEL} ({status})", account_wide=False, account_note=EXTRA_USAGE_NOTE)
    if LONG_CONTEXT_EXTRA_USAGE in lowered_message:
        return Signal(SignalKind.REQUEST, f"{LONG_CONTEXT_LABEL} ({status})", account_wide=False)
    if status in (400, 429) and OUT_OF_EXTRA_USAGE in lowered_message:
        return Signal(SignalKind.REQUEST, f"{OUT_OF_EXTRA_LABEL} ({status})", account_wide=False, account_note=EXTRA_USAGE_NOTE)
    return None


def required_version(message: str) -> str | None:
    """The Claude Code version a claude_code_version_too_old message names as required, if it names one."""
    found = _REQUIRED_VERSION.search(message)
    return found.group(1) if found else None


def version_label(required: str | None) -> str:
    floor = f" (needs {required} or newer)" if required else ""
    return f"claude_code_version_too_old: Claude Code version too old for this model{floor}"


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
