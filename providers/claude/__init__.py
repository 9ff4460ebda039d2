"""The Claude provider: Pro/Max subscription accounts on Anthropic's Messages API, presented as Claude Code."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core import versions
from core.client_errors import error_message_of
from core.enums import ProviderName, SignalKind
from core.protocol import Protocol
from core.sse import SSEEvent
from providers.base import ForwardRequest, Provider, Signal, Upstream
from providers.claude import login
from providers.claude.drift import billing_drift, version_drift
from providers.claude.login import TERMS_WARNING
from providers.claude.quota import read_unified
from providers.claude.response import classify, required_version, restore_body, tool_name_restorer
from providers.claude.rewrite import ClaudeState, build_upstream, is_claude_code, is_claude_code_request, sent_as_is, user_agent_of
from providers.claude.tokens import refresh_tokens
from providers.identity import Identity, Source, configured, newest_version
from providers.learned import CLAUDE_CODE_VERSION, CLAUDE_REQUIRED_VERSION
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

CLAUDE_MINORS_AHEAD = 3  # Claude Code moves its patch number (2.1.x); a minor step is rare


class ClaudeProvider(Provider):
    name = ProviderName.CLAUDE
    display_name = "Claude"
    protocols = frozenset({Protocol.MESSAGES})
    default_models = CLAUDE_MODELS
    terms_warning = TERMS_WARNING
    login = login

    def build_identity(self) -> Identity:
        """The Claude Code version other clients are presented as: the setting, or a newer one seen from real Claude
        Code, or one Claude named as required; and the extra betas."""
        base = configured(self.config, "claude_code_version", "Claude Code version")
        version, warnings = newest_version(
            base,
            (self.learned.get(CLAUDE_CODE_VERSION), Source.LEARNED),
            (self.learned.get(CLAUDE_REQUIRED_VERSION), Source.ADOPTED),
        )
        betas = configured(self.config, "claude_extra_betas", "extra anthropic-beta")
        return Identity(self.name, (version, betas), warnings)

    def may_forward_unchanged(self, headers: Mapping[str, str]) -> bool:
        return is_claude_code(user_agent_of(headers))

    def forwards_unchanged(self, headers: Mapping[str, str], head: Mapping[str, Any], model: str) -> bool:
        return sent_as_is(is_claude_code_request(user_agent_of(headers), head), head, model)

    def prepare(self, request: ForwardRequest) -> Upstream:
        return build_upstream(request, self.config, self.identity().value("Claude Code version"))

    def rewrite_response(self, upstream: Upstream, protocol: Protocol, status: int, body: Any) -> Any | None:
        return restore_body(upstream.state.names if isinstance(upstream.state, ClaudeState) else None, body)

    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        return tool_name_restorer(upstream.state.names if isinstance(upstream.state, ClaudeState) else None)

    def classify(self, status: int, headers: Mapping[str, str], body: Any) -> Signal:
        return classify(status, headers, body)

    def read_quota(self, headers: Mapping[str, str], now: float) -> QuotaReading | None:
        return read_unified(headers, now)

    def after_error(self, upstream: Upstream, signal: Signal, body: Any) -> Signal:
        """A version floor Claude names is adopted for the clients Kleis presents (and the request tried once more);
        a billing-lane refusal gets Kleis's explanation."""
        state = upstream.state
        if not isinstance(state, ClaudeState) or signal.account_wide:
            return signal
        if signal.kind is SignalKind.VERSION:
            required = required_version(error_message_of(body) or "")
            adopted = not state.own_user_agent and versions.newer(required, state.version)
            if adopted:
                self.learned.observe(CLAUDE_REQUIRED_VERSION, required)
            return dataclasses.replace(signal, drift=version_drift(state, required, adopted))
        drift = billing_drift(signal.label, state)
        return dataclasses.replace(signal, drift=drift) if drift is not None else signal

    def on_success(self, upstream: Upstream) -> None:
        state = upstream.state
        version = state.version if isinstance(state, ClaudeState) and state.claude_code else None
        if version and versions.plausible_release(version, self.config.claude_code_version, CLAUDE_MINORS_AHEAD):
            self.learned.observe(CLAUDE_CODE_VERSION, version)

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        return await refresh_tokens(http, self.config, account.refresh_token or "")
