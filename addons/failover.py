"""When an account fails a request before anything reached the client: try the next one.

- Non-streaming requests are re-sent (httpx) to the next usable account of the same provider — a stale token's
  own account first, after a forced refresh — each at most once; the client sees only the last answer.
- Streaming requests cannot be re-sent without buffering the new stream (mitmproxy streams only the response
  of the flow's own upstream), so the client gets a retryable error (`retry-after: 1`, `x-should-retry: true`)
  and its SDK's automatic retry lands on the next account, the failed one being cooled or refreshed by then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
from mitmproxy import http

from addons import pipeline
from core.client_errors import Refusal
from addons.pipeline import RequestContext
from addons.wire_secrets import vault
from providers.base import Signal
from providers.lifecycle import RefreshFailed, TokenManager
from core.protocol import Protocol
from store.accounts import AccountView

log = logging.getLogger(__name__)

RETRYABLE = frozenset({"auth", "auth_rejected", "rate_limit", "overloaded", "server"})

DROP_RESPONSE_HEADERS = ("content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive")


def refused_account(signal: Signal) -> Signal:
    return Signal("auth_rejected", "the provider refused the token issued to replace a refused one (401)", account_wide=True)


def should_fail_over(signal: Signal) -> bool:
    return signal.account_wide and signal.kind in RETRYABLE


def next_accounts(ctx: RequestContext, signal: Signal, current: Callable[[int], AccountView | None]) -> list[AccountView]:
    """Accounts still worth trying, in order: the same one again if only its token was stale, then the rest."""
    order: list[AccountView] = []
    if signal.kind == "auth" and ctx.account is not None and ctx.tried.count(ctx.account.id) < 2:
        order.append(ctx.account)
    for candidate in ctx.candidates:
        fresh = current(candidate.id) or candidate
        if fresh.id not in ctx.tried and fresh.usable():
            order.append(fresh)
    return order


def retry_refusal(ctx: RequestContext, signal: Signal, upstream_status: int) -> Refusal:
    """The answer for a streaming client: retry now, Kleis will use another account (or a fresh token)."""
    status = 429 if signal.kind == "rate_limit" else (529 if ctx.protocol is Protocol.MESSAGES and signal.kind == "overloaded" else 503)
    what = "its token was refused; Kleis is refreshing it" if signal.kind == "auth" else signal.label or f"it answered {upstream_status}"
    return Refusal(
        status,
        f"the {ctx.provider.display_name if ctx.provider else ''} account serving this request failed ({what}); retry: Kleis will use another account",
        code="account_failover",
        error_type="overloaded_error" if ctx.protocol is Protocol.MESSAGES and status != 429 else None,
        headers={"retry-after": "1", "x-should-retry": "true"},
    )


async def resend(
    ctx: RequestContext,
    account: AccountView,
    tokens: TokenManager,
    client: httpx.AsyncClient,
    timeout: float,
    force_refresh: bool,
) -> tuple[AccountView, httpx.Response] | None:
    """Send the request again on `account`; None when its token cannot be had."""
    assert ctx.provider is not None and ctx.protocol is not None
    try:
        account = await (tokens.refresh(account.id, force=True, newer_than=account.token_version) if force_refresh else tokens.fresh(account))
    except RefreshFailed as exc:
        log.info("failover skips account %s: %s", account.id, exc)
        return None
    ctx.tried.append(account.id)
    token = account.access_token or ""
    ref = vault.put(token)
    try:
        forward = pipeline.build_forward(ctx, ctx.client_headers, account, ref)
        upstream = ctx.provider.prepare(forward)
        # As apply_upstream does: the client's headers minus what the provider drops, then the provider's own.
        kept = {name: value for name, value in forward.headers.items() if name.lower() not in upstream.drop_headers}
        headers = {**kept, **upstream.headers, "accept-encoding": "identity", "content-type": "application/json"}
        headers = {name: value.replace(ref, token) for name, value in headers.items()}
        response = await client.request(
            "POST",
            upstream.url,
            headers=headers,
            content=json.dumps(upstream.body, separators=(",", ":")).encode(),  # ASCII: a lone surrogate cannot break it
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
    finally:
        vault.release(ref)
    ctx.upstream = upstream
    ctx.account = account
    ctx.usage = ctx.provider.usage_reader(ctx.protocol)
    return account, response


def as_flow_response(response: httpx.Response) -> http.Response:
    headers = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS]
    return http.Response.make(response.status_code, response.content, headers)
