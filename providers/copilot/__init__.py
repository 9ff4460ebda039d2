"""The GitHub Copilot provider: Chat, Responses and Messages to the Copilot API, as VS Code or a direct-mode app."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core.client_errors import Refusal
from core.config import Config
from core.enums import ProviderName, SignalKind
from core.exceptions import ProviderError, ReauthRequired, TransientProviderError
from core.protocol import Protocol
from core.sse import SSEEvent
from providers.base import ForwardRequest, Provider, Signal, Upstream, classify_by_status
from providers.copilot import body as bodies
from providers.copilot import headers, login, quota, tokens
from providers.drift import Drift
from providers.identity import Identity, Presented, Source, configured
from providers.quota import QuotaReading
from store.accounts import AccountView, TokenSet

# 466 "client not supported": Copilot's answer to an editor profile or API version it retired (February 2026: even
# Copilot Chat 0.37.4 got "bad request: the specified API version is no longer supported"; microsoft/vscode#294308,
# ericc-ch/copilot-api#191). It is about what Kleis presents, not the account.
CLIENT_NOT_SUPPORTED = 466
PROFILE_SETTINGS = "KLEIS_COPILOT_EDITOR_VERSION and KLEIS_COPILOT_PLUGIN_VERSION (and KLEIS_COPILOT_API_VERSION)"
DIRECT_SETTINGS = "KLEIS_COPILOT_DIRECT_USER_AGENT and KLEIS_COPILOT_API_VERSION"


def is_direct(account: AccountView) -> bool:
    """A direct-mode account: its GitHub token is the bearer (the exchange refused it: not VS Code's app)."""
    return isinstance(account.metadata, dict) and account.metadata.get("mode") == "direct"


class CopilotProvider(Provider):
    name = ProviderName.COPILOT
    display_name = "GitHub Copilot"
    protocols = frozenset({Protocol.CHAT, Protocol.RESPONSES, Protocol.MESSAGES})
    endpoints_by_model = True  # GET /models lists each model's supported_endpoints
    # Shown in /v1/models until the catalog lists the account's own models (Copilot's GET /models, models.dev github-copilot).
    default_models = (
        "gpt-4.1",
        "gpt-5-mini",
        "gpt-5.1",
        "claude-sonnet-4.5",
        "claude-haiku-4.5",
        "claude-opus-4.5",
        "gemini-2.5-pro",
    )
    terms_warning = login.TERMS_WARNING
    login = login
    quota_on_refresh = True

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._models: dict[int, tuple[float, list[dict[str, Any]]]] = {}  # account id -> (fresh until, items)

    def api_base(self, account: AccountView) -> str:
        return tokens.api_base(self.config, account.metadata)

    # -- request side -------------------------------------------------------------------------
    def prepare(self, request: ForwardRequest) -> Upstream:
        self._check_endpoint(request.model, request.protocol)
        body, forced_usage = bodies.shape_body(request.protocol, request.body, request.model)
        direct = is_direct(request.account)
        sent = headers.request_headers(self.config, request.protocol, body, request.token_ref, request.headers, direct)
        return Upstream(
            url=bodies.upstream_url(self.api_base(request.account), request.path),
            headers=sent,
            body=body,
            drop_headers=headers.dropped_headers(request.headers.keys()),
            state={"forced_usage": forced_usage, "direct": direct, "profile": profile_text(sent)},
        )

    def _check_endpoint(self, model: str, protocol: Protocol) -> None:
        """Refuse early when Copilot's own model list says the model is not served on this protocol."""
        endpoints = self.supported_endpoints(model)
        wanted = bodies.ENDPOINT_OF[protocol]
        if endpoints is None or wanted in endpoints:
            return
        where = ", ".join(sorted(endpoints)) or "no endpoint Kleis speaks"
        raise Refusal(
            400,
            f"Copilot serves the model {model!r} on {where}, not on {wanted}; call it through the matching Kleis path "
            "(or let Kleis translate: KLEIS_TRANSLATION=on)",
            code="unsupported_endpoint",
        )

    def model_protocols(self, model: str) -> frozenset[Protocol] | None:
        endpoints = self.supported_endpoints(model)
        if endpoints is None:
            return None
        return frozenset(protocol for protocol, endpoint in bodies.ENDPOINT_OF.items() if endpoint in endpoints)

    def supported_endpoints(self, model: str) -> list[str] | None:
        """A model's supported_endpoints from any cached /models answer; None when unknown."""
        for _, items in self._models.values():
            for item in items:
                if item.get("id") == model and isinstance(item.get("supported_endpoints"), list):
                    return [e for e in item["supported_endpoints"] if isinstance(e, str)]
        return None

    # -- response side ------------------------------------------------------------------------
    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        if protocol is Protocol.CHAT and (upstream.state or {}).get("forced_usage"):
            return bodies.usage_chunk_remover()
        return None

    def classify(self, status: int, headers: Mapping[str, str], body: Any) -> Signal:
        if status == 401:
            return Signal(SignalKind.AUTH, "Copilot rejected the token (401); it is renewed before the next request")
        if status == CLIENT_NOT_SUPPORTED:
            return Signal(SignalKind.VERSION, "Copilot does not support the client profile Kleis presents (466)", account_wide=False)
        return classify_by_status(status, headers)

    def after_error(self, upstream: Upstream, signal: Signal, body: Any) -> Signal:
        state = upstream.state if isinstance(upstream.state, dict) else {}
        if signal.kind is not SignalKind.VERSION:
            return signal
        profile, settings = str(state.get("profile", "")), DIRECT_SETTINGS if state.get("direct") else PROFILE_SETTINGS
        hint = f"Kleis presented {profile}, a client profile Copilot no longer supports: set {settings} to what a current release sends."
        return dataclasses.replace(signal, drift=Drift(f"copilot-466:{profile}", settings, hint))

    def build_identity(self) -> Identity:
        """The VS Code profile (exchanged tokens), the direct-mode app's user-agent, and the Copilot API version."""
        values = (
            configured(self.config, "copilot_editor_version", "Editor-Version"),
            configured(self.config, "copilot_plugin_version", "Editor-Plugin-Version"),
            Presented("Copilot-Integration-Id", headers.COPILOT_INTEGRATION_ID, Source.DEFAULT),
            configured(self.config, "copilot_api_version", "X-GitHub-Api-Version"),
            configured(self.config, "copilot_direct_user_agent", "direct-mode User-Agent"),
        )
        return Identity(self.name, values)

    # -- credentials ----------------------------------------------------------------------------
    def needs_refresh(self, account: AccountView, now: float | None = None) -> bool:
        """Exchange mode: renew before `refresh_in` runs out. Direct mode (no expiry): never by time."""
        if account.expires_at is None:
            return False
        now = time.time() if now is None else now
        refresh_at = account.metadata.get("refresh_at")
        if isinstance(refresh_at, (int, float)) and not isinstance(refresh_at, bool):
            return now >= refresh_at
        return super().needs_refresh(account, now)

    def valid_until(self, account: AccountView) -> float | None:
        """GitHub asks for a renewal after `refresh_in` (kept as `refresh_at`, inside it): past that, a request waits
        for the new token rather than trust the old one until its nominal expiry."""
        refresh_at = account.metadata.get("refresh_at")
        if account.expires_at is not None and isinstance(refresh_at, (int, float)) and not isinstance(refresh_at, bool):
            return min(float(refresh_at), account.expires_at)
        return account.expires_at

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        if not account.refresh_token:
            raise ReauthRequired("no GitHub token is stored for this account")
        return await tokens.renew(self.config, account.refresh_token, http)

    async def fetch_quota(self, account: AccountView, http: httpx.AsyncClient) -> QuotaReading | None:
        """Premium requests left, from GitHub (the GitHub token is the account's refresh credential)."""
        if not account.refresh_token:
            return None
        return await quota.fetch(self.config, account.refresh_token, http, time.time())

    async def list_models(self, account: AccountView, http: httpx.AsyncClient) -> list[dict[str, Any]] | None:
        """The account's usable Copilot models (GET <api>/models), cached for KLEIS_MODELS_TTL seconds."""
        now = time.time()
        cached = self._models.get(account.id)
        if cached is not None and cached[0] > now:
            return list(cached[1])
        response = await http.get(
            self.api_base(account) + "/models",
            headers={
                "Authorization": f"Bearer {account.access_token or ''}",
                "Accept": "application/json",
                **headers.profile_headers(self.config, is_direct(account)),
            },
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientProviderError(f"Copilot /models answered {response.status_code}", status=response.status_code)
        if response.status_code != 200:
            raise ProviderError(f"Copilot /models answered {response.status_code}", status=response.status_code)
        try:
            data = response.json().get("data")
        except (ValueError, AttributeError):
            data = None
        if not isinstance(data, list):
            raise TransientProviderError("Copilot /models answered without a data list")
        items = [item for item in data if bodies.usable_model(item)]
        self._models[account.id] = (now + self.config.models_ttl, items)
        return list(items)


def profile_text(sent: Mapping[str, str]) -> str:
    """The profile a request carried, for messages: its editor and plugin versions (or user-agent) and API version."""
    names = ("Editor-Version", "Editor-Plugin-Version") if "Editor-Version" in sent else ("User-Agent",)
    return " ".join(f"{name}: {sent[name]}" for name in (*names, "X-GitHub-Api-Version") if name in sent)
