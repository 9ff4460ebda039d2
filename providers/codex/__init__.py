"""The Codex (ChatGPT) provider: ChatGPT subscription accounts serving /v1/responses through the Codex backend."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core.config import Config
from core.enums import ProviderName
from core.exceptions import ReauthRequired
from core.protocol import Protocol
from core.sse import SSEEvent
from providers.base import ForwardRequest, Provider, Signal, Upstream
from providers.codex import errors, login
from providers.codex.aggregate import aggregate_events
from providers.codex.body import DEFAULT_RULES, BodyRules, normalise_body
from providers.codex.constants import RESPONSES_PATH, TERMS_WARNING
from providers.codex.headers import client_session_id, dropped_headers, new_session_id, upstream_headers
from providers.codex.quota import read_usage_headers
from providers.codex.stream import CodexState, make_transformer
from providers.codex.tokens import refresh_tokens
from providers.quota import QuotaReading
from store.accounts import AccountView, TokenSet

log = logging.getLogger(__name__)

# Newest lists read: CLIProxyAPI's GET /codex/models of 2026-08-17 (router-for-me/CLIProxyAPI) and OpenCode's
# allow-list (anomalyco/opencode, packages/opencode/src/plugin/openai/codex.ts).
# Any other gpt-5* or *codex* model still reaches Codex through the model-family rules.
DEFAULT_MODELS = (
    "gpt-5.6-sol",
    "gpt-5.6-terra",
    "gpt-5.6-luna",
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.3-codex",
    "gpt-5.3-codex-spark",
)


class CodexProvider(Provider):
    name = ProviderName.CODEX
    display_name = "Codex (ChatGPT)"
    protocols = frozenset({Protocol.RESPONSES})
    default_models = DEFAULT_MODELS
    terms_warning = TERMS_WARNING
    login = login

    def __init__(self, config: Config, body_rules: BodyRules | None = None) -> None:
        if body_rules is None:
            configured = [p.strip() for p in config.codex_removed_params.split(",") if p.strip()]
            body_rules = dataclasses.replace(DEFAULT_RULES, removed=frozenset(configured)) if configured else DEFAULT_RULES
        super().__init__(config)
        self.body_rules = body_rules

    # -- request side -------------------------------------------------------------------
    def prepare(self, request: ForwardRequest) -> Upstream:
        client_session = client_session_id(request.headers, request.body)
        session_id = client_session or new_session_id()
        body = normalise_body(request.body, request.model, self.body_rules)
        if client_session and not body.get("prompt_cache_key"):
            body["prompt_cache_key"] = client_session  # the backend's prompt cache follows the session (PI)
        return Upstream(
            url=self.config.codex_api_base + RESPONSES_PATH,
            headers=upstream_headers(self.config, request.account, request.token_ref, session_id),
            body=body,
            drop_headers=dropped_headers(request.headers),
            state=CodexState(session_id=session_id, client_stream=request.stream, model=request.model),
            aggregate=not request.stream,  # the backend only streams; Kleis answers one JSON object
        )

    # -- response side ------------------------------------------------------------------
    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        return make_transformer(upstream.state) if isinstance(upstream.state, CodexState) else None

    def aggregate(self, upstream: Upstream, events: list[SSEEvent]) -> tuple[int, Any]:
        return aggregate_events(events, upstream.state if isinstance(upstream.state, CodexState) else None)

    def stream_outcome(self, upstream: Upstream) -> tuple[str, Signal | None]:
        state = upstream.state
        return (state.error_label, state.signal) if isinstance(state, CodexState) else ("", None)

    def classify(self, status: int, headers: Mapping[str, str], body: Any) -> Signal:
        return errors.classify(status, headers, body)

    def read_quota(self, headers: Mapping[str, str], now: float) -> QuotaReading | None:
        return read_usage_headers(headers, now)

    # -- credentials ----------------------------------------------------------------------
    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        if not account.refresh_token:
            raise ReauthRequired("no refresh token is stored for this account")
        tokens, identity = await refresh_tokens(http, self.config, account.refresh_token)
        stored = account.metadata.get("account_id") if isinstance(account.metadata, dict) else None
        if identity.account_id and stored and identity.account_id != stored:
            log.warning("codex account %s: the refreshed token names another ChatGPT account id", account.id)
        return tokens
