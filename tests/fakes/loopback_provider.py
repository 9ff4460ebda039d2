"""A small provider for testing the proxy core: forwards every protocol to fakes, renames tools on the way."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from core.exceptions import ReauthRequired, TransientProviderError
from core.protocol import Protocol
from core.sse import SSEEvent, format_event
from providers.base import ForwardRequest, Provider, Upstream
from providers.claude.quota import read_unified
from providers.quota import QuotaReading
from store.accounts import AccountView, TokenSet

UPSTREAM_PREFIX = "up_"


class LoopbackProvider(Provider):
    name = "loop"
    display_name = "Loopback"
    protocols = frozenset(Protocol)
    default_models = ("loop-small", "loop-large")

    def __init__(self, config, bases: dict[Protocol, str], token_url: str, client_id: str = "test-client") -> None:
        super().__init__(config)
        self.bases = bases
        self.token_url = token_url
        self.client_id = client_id

    def prepare(self, request: ForwardRequest) -> Upstream:
        body = dict(request.body, model=request.model)
        names: dict[str, str] = {}
        for tool in body.get("tools") or []:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                names[UPSTREAM_PREFIX + tool["name"]] = tool["name"]
                tool["name"] = UPSTREAM_PREFIX + tool["name"]
        query = f"?{request.query}" if request.query else ""
        return Upstream(
            url=f"{self.bases[request.protocol]}{request.path}{query}",
            headers={"authorization": f"Bearer {request.token_ref}", "x-loop-account": str(request.account.id)},
            body=body,
            state=names,
        )

    def stream_transformer(self, upstream: Upstream, protocol: Protocol) -> Callable[[SSEEvent], bytes | None] | None:
        names: dict[str, str] = upstream.state or {}
        if protocol is not Protocol.MESSAGES or not names:
            return None

        def restore(event: SSEEvent) -> bytes | None:
            if event.event != "content_block_start":
                return None
            data = event.json()
            block = (data or {}).get("content_block") or {}
            if block.get("type") == "tool_use" and block.get("name") in names:
                block["name"] = names[block["name"]]
                return format_event(data, event.event)
            return None

        return restore

    def rewrite_response(self, upstream: Upstream, protocol: Protocol, status: int, body: Any) -> Any | None:
        names: dict[str, str] = upstream.state or {}
        changed = False
        for block in (body.get("content") or []) if isinstance(body, dict) else []:
            if block.get("type") == "tool_use" and block.get("name") in names:
                block["name"] = names[block["name"]]
                changed = True
        return body if changed else None

    def read_quota(self, headers: Mapping[str, str], now: float) -> QuotaReading | None:
        """The fakes speak Anthropic's unified rate-limit headers on every protocol (tests.fakes.quota)."""
        return read_unified(headers, now)

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        response = await http.post(
            self.token_url,
            json={"grant_type": "refresh_token", "refresh_token": account.refresh_token, "client_id": self.client_id},
        )
        if response.status_code >= 500:
            raise TransientProviderError(f"token endpoint answered {response.status_code}")
        data = response.json()
        if response.status_code >= 400:
            if data.get("error") == "invalid_grant":
                raise ReauthRequired(data.get("error_description") or "invalid_grant")
            raise TransientProviderError(f"token endpoint answered {response.status_code}: {data}")
        return TokenSet(data["access_token"], data.get("refresh_token"), time.time() + float(data.get("expires_in", 3600)))
