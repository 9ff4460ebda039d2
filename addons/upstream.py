"""The request Kleis sends upstream, built once per attempt: for the flow itself and for a failover's re-send.

`start_call` asks the provider to prepare the client's request for an account and records that attempt on the
request's context; `build_request` turns the provider's answer into the URL, headers and body that go on the
wire, which `apply_to_flow` writes into the mitmproxy flow and `send` sends with httpx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
from mitmproxy import http

from core import fastjson
from engine.account_load import AccountLoad
from engine.context import RequestContext
from providers.base import CLIENT_CREDENTIAL_HEADERS, ForwardRequest, Upstream
from store.accounts import AccountView

HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade")
NOT_FORWARDED = frozenset({*CLIENT_CREDENTIAL_HEADERS, *HOP_BY_HOP, "host", "content-length", "accept-encoding", "content-encoding"})


@dataclasses.dataclass(frozen=True)
class UpstreamRequest:
    url: str
    scheme: str
    host: str
    port: int
    target: str  # origin-form path and query
    headers: dict[str, str]  # lower-case names
    body: bytes


def forward_headers(client_headers: Mapping[str, str]) -> dict[str, str]:
    """Client headers minus its credentials and hop-by-hop headers; the provider adds its own."""
    return {name: value for name, value in client_headers.items() if name.lower() not in NOT_FORWARDED}


def forward_request(ctx: RequestContext, account: AccountView, token_ref: str) -> ForwardRequest:
    client, route = ctx.client, ctx.route
    assert client.protocol is not None and route.resolution is not None
    # The provider rewrites the body in place: the first attempt takes the parsed body, a retry parses again.
    body = client.body if ctx.upstream.prepared is None and client.body is not None else fastjson.loads(client.raw_body)
    return ForwardRequest(
        protocol=client.protocol,
        path=client.path,
        query=client.query,
        headers=forward_headers(client.headers),
        body=body,
        model=route.resolution.model,
        account=account,
        token_ref=token_ref,
        stream=client.stream,
        body_size=len(client.raw_body),
        raw_body=client.raw_body,
        carried=client.carried,
    )


def drop_bodies(ctx: RequestContext) -> None:
    """The request has ended: let go of its parsed bodies now. A request context sits in reference cycles (flow,
    hooks, closures), so what it holds is freed by the garbage collector, not by reference counting; a parsed 1 MB
    body (some 50,000 objects) freed inside a collection stalled every stream on the event loop for 50–90 ms."""
    ctx.client.body, ctx.client.unread = None, None
    if ctx.upstream.prepared is not None:
        ctx.upstream.prepared.body, ctx.upstream.prepared.raw_body = {}, b""


def drop_bodies_soon(ctx: RequestContext) -> None:
    """drop_bodies once the current hook has returned: freeing a parsed 1.5 MB body takes 1–2 ms, which the answer
    being sent need not wait for (mitmproxy writes it as the hook returns, before the loop runs this)."""
    try:
        asyncio.get_running_loop().call_soon(drop_bodies, ctx)
    except RuntimeError:  # no loop in this thread
        drop_bodies(ctx)


def start_call(ctx: RequestContext, account: AccountView, token_ref: str, now: float | None = None) -> UpstreamRequest:
    """Prepare the request for `account` and record it as the request's current upstream call."""
    provider = ctx.route.provider
    assert provider is not None and ctx.client.protocol is not None
    forward = forward_request(ctx, account, token_ref)
    prepared = provider.prepare(forward)
    call = ctx.upstream
    call.account, call.prepared, call.token_ref = account, prepared, token_ref
    call.usage = provider.usage_reader(ctx.client.protocol)
    call.forwarded_at = time.time() if now is None else now
    return build_request(prepared, forward.headers)


def build_request(prepared: Upstream, forwarded: Mapping[str, str]) -> UpstreamRequest:
    """URL parts, headers (the client's minus what the provider drops, then the provider's own) and JSON body."""
    target = urlsplit(prepared.url)
    scheme = target.scheme or "https"
    port = target.port or (443 if scheme == "https" else 80)
    own = {name.lower(): value for name, value in prepared.headers.items()}
    headers = {name: value for name, value in forwarded.items() if name not in prepared.drop_headers and name not in own}
    headers.update(own)
    headers["host"] = target.netloc if target.port not in (None, 80 if scheme == "http" else 443) else (target.hostname or "")
    headers["accept-encoding"] = "identity"  # Kleis reads and rewrites what comes back
    headers["content-type"] = "application/json"
    return UpstreamRequest(
        url=prepared.url,
        scheme=scheme,
        host=target.hostname or "",
        port=port,
        target=(target.path or "/") + (f"?{target.query}" if target.query else ""),
        headers=headers,
        # the client's bytes when the provider changed nothing (Claude Code to Claude), else the body written anew
        body=prepared.raw_body or fastjson.dumps(prepared.body),
    )


def apply_to_flow(flow: http.HTTPFlow, request: UpstreamRequest) -> None:
    """Point the flow at the upstream. The target is written to the request's fields directly: `request.url = …`
    would parse the URL and rewrite Host and authority through the header multidict twice."""
    data = flow.request.data
    data.scheme, data.host, data.port, data.authority = request.scheme.encode(), request.host, request.port, b""
    data.path = request.target.encode()
    flow.request.headers = http.Headers([(name.encode("latin-1"), str(value).encode("latin-1")) for name, value in request.headers.items()])
    flow.request.content = request.body


async def send(client: httpx.AsyncClient, request: UpstreamRequest, token_ref: str, token: str, timeout: float) -> httpx.Response:
    """Send with httpx (a failover's re-send), the token put in place of its reference only here."""
    headers = {name: value.replace(token_ref, token) for name, value in request.headers.items()}
    return await client.request("POST", request.url, headers=headers, content=request.body, timeout=httpx.Timeout(timeout, connect=10.0))


def hold_slot(ctx: RequestContext, load: AccountLoad, account_id: int) -> None:
    """This request now counts against `account_id`'s in-flight cap (and no longer against the one it held)."""
    if ctx.upstream.slot == account_id:
        return
    drop_slot(ctx, load)
    load.take(account_id)
    ctx.upstream.slot = account_id


def drop_slot(ctx: RequestContext, load: AccountLoad) -> None:
    if ctx.upstream.slot is not None:
        load.give_back(ctx.upstream.slot)
        ctx.upstream.slot = None
