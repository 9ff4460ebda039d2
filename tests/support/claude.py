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
from engine.health import HealthTracker
from providers.base import Signal
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


class SignalRecorder:
    """Stands in for the proxy's health tracker: keeps what the provider said about each upstream error instead of
    acting on it."""

    def __init__(self, tracker: HealthTracker) -> None:
        self.signals: list[tuple[int, Signal]] = []
        tracker.on_signal = self.on_signal  # type: ignore[method-assign]
        tracker.on_success = self.on_success  # type: ignore[method-assign]

    def on_signal(self, account: AccountView, signal: Signal) -> None:
        self.signals.append((account.id, signal))

    def on_success(self, account: AccountView) -> None:
        pass


@dataclasses.dataclass
class ClaudeLive:
    """A Kleis listener with the Claude provider, its one account and a key."""

    proxy: ProxyThread
    key: str
    api: FakeClaudeAPI
    account_id: int
    oauth: FakeOAuth
    access_token: str
    health: SignalRecorder | None = None  # with `signals=True`: what the provider said, instead of the tracker acting

    @property
    def url(self) -> str:
        return self.proxy.url

    def client(self, **options: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.proxy.url, **({"auth_token": self.key, "api_key": None, "max_retries": 0} | options))


def start_claude(
    store: Store,
    config: Config,
    run_proxy: Callable[..., ProxyThread],
    auth: FakeOAuth,
    api: FakeClaudeAPI,
    parts: Parts | None = None,
    *,
    expires_in: float = 3600,
    signals: bool = False,
) -> ClaudeLive:
    """Kleis with the Claude provider (health on unless `parts` says otherwise), one Claude account whose token expires
    in `expires_in` seconds, a new key; with `signals`, the health tracker's signals are recorded instead of acted on."""
    cfg = config.replace(claude_api_base=api.url, claude_auth_base=auth.url)
    access, refresh = auth.seed()
    row, _ = upsert_account(
        "claude", ACCOUNT["uuid"], TokenSet(access, refresh, time.time() + expires_in), store.cipher, email=ACCOUNT["email_address"]
    )
    _, key = keys.create_key("claude")
    proxy = run_proxy(cfg, {"claude": ClaudeProvider(cfg)}, parts if parts is not None else Parts(health=True))
    recorder = None
    if signals:
        assert proxy.services.health is not None, "signals are recorded from the health tracker: Parts(health=True)"
        recorder = SignalRecorder(proxy.services.health)
    return ClaudeLive(proxy, key, api, row.id, auth, access, recorder)
