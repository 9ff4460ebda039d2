"""Claude request fixtures shared by the rewrite, stream and end-to-end tests: an account, tools, a real Claude Code request."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import anthropic

from addons.server import ProxyThread
from addons.services import Parts
from core.config import Config
from providers.claude import ClaudeProvider
from providers.claude.rewrite import IDENTITY_AGENT_SDK
from store import keys
from store.accounts import AccountView, TokenSet, upsert_account
from store.db import Store
from tests.fakes.claude import ACCOUNT, FakeClaudeAPI
from tests.fakes.oauth import FakeOAuth
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


@dataclasses.dataclass
class ClaudeLive:
    proxy: ProxyThread
    key: str
    api: FakeClaudeAPI
    account_id: int

    def client(self, **options: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.proxy.url, auth_token=self.key, api_key=None, **({"max_retries": 0} | options))


def start_claude(
    store: Store, config: Config, run_proxy: Callable[..., ProxyThread], auth: FakeOAuth, api: FakeClaudeAPI, parts: Parts | None = None
) -> ClaudeLive:
    """Kleis with the Claude provider (health on unless `parts` says otherwise), one Claude account, a new key."""
    cfg = config.replace(claude_api_base=api.url, claude_auth_base=auth.url)
    access, refresh = auth.seed()
    row, _ = upsert_account(
        "claude", ACCOUNT["uuid"], TokenSet(access, refresh, time.time() + 3600), store.cipher, email=ACCOUNT["email_address"]
    )
    _, key = keys.create_key("claude")
    proxy = run_proxy(cfg, {"claude": ClaudeProvider(cfg)}, parts if parts is not None else Parts(health=True))
    return ClaudeLive(proxy, key, api, row.id)
