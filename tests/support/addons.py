"""Kleis's addons outside a proxy: the services built as `serve` builds them, and flows made by hand (mitmproxy's
tflow), for unit tests of the hooks run under mitmproxy.test.taddons."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from mitmproxy import http
from mitmproxy.master import Master
from mitmproxy.test import taddons, tflow

from addons.kleis import Kleis
from addons.services import Parts, Services, build_services
from core.config import Config
from core.protocol import Protocol
from store import keys
from store.accounts import TokenSet, upsert_account
from store.db import Store
from tests.fakes.loopback_provider import LoopbackProvider

UPSTREAM = "http://127.0.0.1:9"  # closed: these tests never send anything


def loop_provider(config: Config) -> LoopbackProvider:
    return LoopbackProvider(config, bases=dict.fromkeys(Protocol, UPSTREAM), token_url=f"{UPSTREAM}/token")


def make_services(store: Store, config: Config, master: Master, parts: Parts | None = None) -> Services:
    """The shared services over `store` with the loopback provider (the follower has loaded the store)."""
    return build_services(store, config, {"loop": loop_provider(config)}, parts or Parts(), lambda: master)


def seed(store: Store, identity: str = "acct-1", expires_in: float = 3600) -> tuple[str, int]:
    """A client key and one loopback account: (the key, the account id)."""
    _, key = keys.create_key("unit")
    row, _ = upsert_account(
        "loop", identity, TokenSet(f"sk-loop-access-{identity}", f"sk-loop-refresh-{identity}", time.time() + expires_in), store.cipher
    )
    return key, row.id


def client_flow(method: str, path: str, body: Any = None, **headers: str) -> http.HTTPFlow:
    """A flow as a client sent it to Kleis's listener (no response yet)."""
    content = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else (body or b"")
    flow = tflow.tflow()
    flow.request = http.Request.make(method, f"http://127.0.0.1:8080{path}", content, {"content-type": "application/json", **headers})
    return flow


def answer(flow: http.HTTPFlow, status: int, body: Any, content_type: str = "application/json", **headers: str) -> None:
    """The upstream's answer arriving on the flow."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    flow.response = http.Response.make(status, content, {"content-type": content_type, **headers})


def run_hooks(
    store: Store,
    config: Config,
    scenario: Callable[[Kleis, Services], Awaitable[None]],
    parts: Parts | None = None,
    upstream: Callable[[httpx.Request], httpx.Response] | None = None,
) -> None:
    """`scenario(addon, services)` on an event loop, the Kleis addon loaded in a taddons context. With `upstream`, what
    Kleis sends with httpx itself (a failover's re-send) is answered by that function in memory (httpx's
    MockTransport), not over a socket."""

    async def main() -> None:
        with taddons.context() as tctx:
            services = make_services(store, config, tctx.master, parts)
            if upstream is not None:
                await services.http.aclose()
                services.http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
            addon = Kleis(services)
            tctx.master.addons.add(addon)
            try:
                await scenario(addon, services)
            finally:
                await services.http.aclose()

    asyncio.run(main())


def error_of(flow: http.HTTPFlow) -> dict[str, Any]:
    """The JSON body of the answer the client gets."""
    assert flow.response is not None
    found: dict[str, Any] = json.loads(flow.response.content or b"{}")
    return found


async def forwarded(addon: Kleis, flow: http.HTTPFlow) -> None:
    """The request hooks, as mitmproxy runs them before it connects upstream."""
    await addon.requestheaders(flow)
    if flow.response is None:
        await addon.request(flow)


async def answered(
    addon: Kleis, flow: http.HTTPFlow, status: int, body: Any, content_type: str = "application/json", **headers: str
) -> None:
    """The upstream's answer arriving, and the response hooks."""
    answer(flow, status, body, content_type, **headers)
    addon.responseheaders(flow)
    await addon.response(flow)
