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
VERSION_TOO_OLD = "claude_code_version_too_old"
FAST_MODE_CREDITS = "usage credits are required for fast mode"
OUT_OF_EXTRA_USAGE = "out of extra usage"
UNIFIED_RESET = "anthropic-ratelimit-unified-reset"
_REQUIRED_VERSION = re.compile(r"version (\d+\.\d+\.\d+) or newer is required", re.IGNORECASE)


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
        required = _REQUIRED_VERSION.search(message)
        floor = f" (needs {required.group(1)} or newer)" if required else ""
        return Signal(
            SignalKind.VERSION, f"Claude Code version too old for this model{floor}: raise KLEIS_CLAUDE_CODE_VERSION", account_wide=False
        )
    if status == 429 and FAST_MODE_CREDITS in lowered:
        return Signal(SignalKind.RATE_LIMIT, "fast mode needs usage credits (this request only)", account_wide=False)
    if status == 429:
        reset_at = unified_reset(headers)
        if reset_at is not None:
            return Signal(SignalKind.RATE_LIMIT, "Claude subscription usage limit reached (429)", reset_at=reset_at)
    if status == 400 and OUT_OF_EXTRA_USAGE in lowered:
        return Signal(SignalKind.REQUEST, "refused as a third-party client (400 'out of extra usage')", account_wide=False)
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
