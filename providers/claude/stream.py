"""Claude's answers with the caller's tool names restored: whole JSON bodies and SSE events one by one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from addons.sse import SSEEvent, format_event
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
