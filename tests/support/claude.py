"""Claude request fixtures shared by the rewrite, stream and end-to-end tests: an account, tools, a real Claude Code request."""

from __future__ import annotations

import json
from typing import Any

from providers.claude.rewrite import IDENTITY_AGENT_SDK
from store.accounts import AccountView
from tests.support.accounts import view

TOKEN_REF = "kleis-secret-ref-" + "0" * 32


def account() -> AccountView:
    return view(1, "claude", primary=True, identity="uuid-1", access_token="sk-ant-oat01-x", refresh_token="sk-ant-ort01-x")


def tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"the {name} tool", "input_schema": {"type": "object", "properties": {}}}


# What Claude Code 2.1.328 sends (headers and a body with its billing and identity blocks).
CLAUDE_CODE_HEADERS = {
    "User-Agent": "claude-cli/2.1.328 (external, sdk-cli)",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,prompt-caching-scope-2026-01-05",
    "x-app": "cli",
    "X-Claude-Code-Session-Id": "2b0c6f2e-8a51-4d0e-9a57-3f7f0c9d1e11",
    "X-Stainless-Lang": "js",
    "X-Stainless-Package-Version": "0.94.0",
    "anthropic-dangerous-direct-browser-access": "true",
}
CLAUDE_CODE_BODY = {
    "model": "claude-sonnet-5",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.328.e1f; cc_entrypoint=sdk-cli; cch=4a2b9;"},
        {"type": "text", "text": IDENTITY_AGENT_SDK, "cache_control": {"type": "ephemeral"}},
        {
            "type": "text",
            "text": "You are an interactive agent that helps users with software engineering tasks.\n\n"
            "Here is useful information about the environment you are running in:\n<env>\n</env>",
            "cache_control": {"type": "ephemeral"},
        },
    ],
    "tools": [
        tool("Read"),
        tool("Bash"),
        tool("TodoWrite"),
        tool("Agent"),
        tool("ToolSearch"),
        tool("TaskStop"),
        tool("StructuredOutput"),
        tool("mcp__github__create_issue"),
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "fix the bug", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a.py"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "print(1)"}]},
    ],
    "metadata": {"user_id": json.dumps({"device_id": "ab" * 32, "account_uuid": "", "session_id": "2b0c6f2e-8a51-4d0e-9a57-3f7f0c9d1e11"})},
    "thinking": {"type": "adaptive"},
}
