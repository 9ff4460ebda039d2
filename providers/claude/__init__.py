"""The Claude provider: Pro/Max subscription accounts on Anthropic's Messages API, presented as Claude Code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core.enums import ProviderName
from core.protocol import Protocol
from core.sse import SSEEvent
from providers.base import ForwardRequest, Provider, Signal, Upstream
from providers.claude import login
from providers.claude.login import TERMS_WARNING
from providers.claude.quota import read_unified
from providers.claude.response import classify, restore_body, tool_name_restorer
from providers.claude.rewrite import build_upstream
from providers.claude.tokens import refresh_tokens
from providers.quota import QuotaReading
from store.accounts import AccountView, TokenSet

# Current models (models.dev anthropic provider, 2026-10); any other claude-* id is routed here too.
CLAUDE_MODELS = (
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-fable-5",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-8",
    "claude-haiku-4-5",
)


class ClaudeProvider(Provider):
    name = ProviderName.CLAUDE
    display_name = "Claude"
    protocols = frozenset({Protocol.MESSAGES})
    default_models = CLAUDE_MODELS
    terms_warning = TERMS_WARNING
    login = login

    def prepare(self, request: ForwardRequest) -> Upstream:
        return build_upstream(request, self.config)

    def rewrite_response(self, upstream: Upstream, protocol: Protocol, status: int, body: Any) -> Any | None:
        return restore_body(upstream.state, body)

    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        return tool_name_restorer(upstream.state)

    def classify(self, status: int, headers: Mapping[str, str], body: Any) -> Signal:
        return classify(status, headers, body)

    def read_quota(self, headers: Mapping[str, str], now: float) -> QuotaReading | None:
        return read_unified(headers, now)

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        return await refresh_tokens(http, self.config, account.refresh_token or "")
