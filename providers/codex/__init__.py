"""The Codex (ChatGPT) provider: ChatGPT subscription accounts serving /v1/responses through the Codex backend."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core import versions
from core.config import Config
from core.enums import ProviderName, SignalKind
from core.exceptions import ReauthRequired
from core.protocol import Protocol
from core.sse import SSEEvent
from providers.base import ForwardRequest, Provider, Signal, Upstream
from providers.codex import errors, login
from providers.codex.aggregate import aggregate_events
from providers.codex.body import DEFAULT_RULES, BodyRules, normalise_body
from providers.codex.constants import RESPONSES_PATH, TERMS_WARNING
from providers.codex.headers import caller, client_session_id, dropped_headers, identity_headers, new_session_id, upstream_headers
from providers.codex.quota import read_usage_headers
from providers.codex.stream import CodexState, make_transformer
from providers.codex.tokens import refresh_tokens
from providers.drift import Drift
from providers.identity import Identity, Source, configured, newest_version
from providers.learned import CODEX_CLI_VERSION
from providers.quota import QuotaReading
from store.accounts import AccountView, TokenSet

log = logging.getLogger(__name__)

# Newest lists read: GPT-6 (gpt-6-sol, gpt-6-astra, gpt-6-luna, released 2026-09 per public reports, e.g.
# vfarcic/dot-agent-deck#1241), CLIProxyAPI's GET /codex/models of 2026-08-17 (router-for-me/CLIProxyAPI) and
# OpenCode's allow-list (anomalyco/opencode, packages/opencode/src/plugin/openai/codex.ts).
# Any other gpt-6*, gpt-5* or *codex* model still reaches Codex through the model-family rules.
DEFAULT_MODELS = (
    "gpt-6-sol",
    "gpt-6-astra",
    "gpt-6-luna",
    "gpt-5.6-sol",
    "gpt-5.6-terra",
    "gpt-5.6-luna",
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.3-codex",
    "gpt-5.3-codex-spark",
)

CODEX_MINORS_AHEAD = 150  # Codex CLI releases a minor version or two a week (0.146 → 0.171 in 2026)


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

    def build_identity(self) -> Identity:
        """The Codex CLI version other clients are presented as: the setting, or a newer one seen from Codex CLI."""
        base = configured(self.config, "codex_client_version", "Codex CLI version")
        version, warnings = newest_version(base, (self.learned.get(CODEX_CLI_VERSION), Source.LEARNED))
        return Identity(self.name, (version, configured(self.config, "codex_originator", "originator")), warnings)

    # -- request side -------------------------------------------------------------------
    def prepare(self, request: ForwardRequest) -> Upstream:
        client_session = client_session_id(request.headers, request.body)
        session_id = client_session or new_session_id()
        body = normalise_body(request.body, request.model, self.body_rules, written=request.written)
        if client_session and not body.get("prompt_cache_key"):
            body["prompt_cache_key"] = client_session  # the backend's prompt cache follows the session (PI)
        who = caller(request.headers)
        state = CodexState(session_id=session_id, client_stream=request.stream, model=request.model, from_codex_cli=who.codex_cli)
        identity: dict[str, str] = {}
        if who.codex_cli:
            state.client_version = who.version or ""
            if who.version and not who.sent_version:  # through a custom provider Codex CLI names it in its user-agent only
                identity = {"version": who.version}
        else:
            presented = self.identity()
            state.client_version = presented.value("Codex CLI version")
            identity = identity_headers(presented.value("originator"), state.client_version)
        return Upstream(
            url=self.config.codex_api_base + RESPONSES_PATH,
            headers=upstream_headers(request.account, request.token_ref, session_id, identity),
            body=body,
            drop_headers=dropped_headers(request.headers),
            state=state,
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

    def after_error(self, upstream: Upstream, signal: Signal, body: Any) -> Signal:
        state = upstream.state
        if not isinstance(state, CodexState) or signal.account_wide:
            return signal
        if signal.kind is SignalKind.VERSION:
            return dataclasses.replace(signal, drift=version_drift(state))
        if signal.kind is SignalKind.REQUEST and errors.NOT_OFFERED in signal.label:
            return dataclasses.replace(signal, drift=not_offered_drift(state))
        return signal

    def on_success(self, upstream: Upstream) -> None:
        state = upstream.state
        version = state.client_version if isinstance(state, CodexState) and state.from_codex_cli else None
        if version and versions.plausible_release(version, self.config.codex_client_version, CODEX_MINORS_AHEAD):
            self.learned.observe(CODEX_CLI_VERSION, version)

    # -- credentials ----------------------------------------------------------------------
    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        if not account.refresh_token:
            raise ReauthRequired("no refresh token is stored for this account")
        tokens, identity = await refresh_tokens(http, self.config, account.refresh_token)
        stored = account.metadata.get("account_id") if isinstance(account.metadata, dict) else None
        if identity.account_id and stored and identity.account_id != stored:
            log.warning("codex account %s: the refreshed token names another ChatGPT account id", account.id)
        return tokens


def version_drift(state: CodexState) -> Drift:
    """The backend's client-version gate: Codex CLI's own version needs an upgrade; Kleis's presented one a setting."""
    if state.from_codex_cli:
        return Drift(
            f"codex-version:{state.model}:cli:{state.client_version}",
            "",
            f"Kleis forwarded Codex CLI's own version ({state.client_version or 'unknown'}); "
            f"the ChatGPT backend wants a newer Codex CLI for {state.model}: upgrade Codex CLI.",
        )
    return Drift(
        f"codex-version:{state.model}:{state.client_version}",
        "KLEIS_CODEX_CLIENT_VERSION",
        f"Kleis presented Codex CLI {state.client_version}, which the ChatGPT backend finds too old for {state.model}: "
        "raise KLEIS_CODEX_CLIENT_VERSION to a current Codex CLI release (or send one real Codex CLI request: Kleis learns its version).",
    )


def not_offered_drift(state: CodexState) -> Drift:
    version = state.client_version or "an unknown version"
    return Drift(
        f"codex-not-offered:{state.model}:{state.client_version}",
        "" if state.from_codex_cli else "KLEIS_CODEX_CLIENT_VERSION",
        f"Kleis: the ChatGPT backend does not offer {state.model} through Codex to this account at Codex CLI {version}; "
        "a newer Codex CLI version, or a plan that includes the model, may be needed.",
    )
