"""When an account fails a request before anything reached the client: try the next one.

- Non-streaming requests are re-sent (httpx) to the next usable account of the same provider — a stale token's
  own account first, after a forced refresh — each at most once; the client sees only the last answer.
- Streaming requests cannot be re-sent without buffering the new stream (mitmproxy streams only the response
  of the flow's own upstream), so the client gets a retryable error (`retry-after: 1`, `x-should-retry: true`)
  and its SDK's automatic retry lands on the next account, the failed one being cooled or refreshed by then.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

import httpx
from mitmproxy import http

from addons import response_headers, responses, upstream
from addons.services import Services
from core.client_errors import Refusal
from core.enums import SignalKind
from core.jsonshape import json_or_none
from core.protocol import Protocol
from engine.context import RequestContext
from engine.wire_secrets import vault
from providers.base import Signal
from providers.drift import log_once
from providers.lifecycle import RefreshFailed, TokenManager
from store.accounts import AccountView

log = logging.getLogger(__name__)

RETRYABLE = frozenset({SignalKind.AUTH, SignalKind.AUTH_REJECTED, SignalKind.RATE_LIMIT, SignalKind.OVERLOADED, SignalKind.SERVER})

DROP_RESPONSE_HEADERS = ("content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive")


def refused_account() -> Signal:
    return Signal(SignalKind.AUTH_REJECTED, "the provider refused the token issued to replace a refused one (401)", account_wide=True)


def should_fail_over(signal: Signal) -> bool:
    return signal.account_wide and signal.kind in RETRYABLE


def next_accounts(ctx: RequestContext, signal: Signal, current: Callable[[int], AccountView | None]) -> list[AccountView]:
    """Accounts still worth trying, in order: the same one again if only its token was stale, then the rest."""
    order: list[AccountView] = []
    account, tried = ctx.upstream.account, ctx.upstream.tried
    if signal.kind == SignalKind.AUTH and account is not None and tried.count(account.id) < 2:
        order.append(account)
    for candidate in ctx.route.candidates:
        fresh = current(candidate.id) or candidate
        if fresh.id not in tried and fresh.usable():
            order.append(fresh)
    return order


def retry_refusal(ctx: RequestContext, signal: Signal, upstream_status: int) -> Refusal:
    """The answer for a streaming client: retry now, Kleis will use another account (or a fresh token)."""
    messages = ctx.client.protocol is Protocol.MESSAGES
    status = 429 if signal.kind == SignalKind.RATE_LIMIT else (529 if messages and signal.kind == SignalKind.OVERLOADED else 503)
    what = (
        "its token was refused; Kleis is refreshing it"
        if signal.kind == SignalKind.AUTH
        else signal.label or f"it answered {upstream_status}"
    )
    provider = ctx.route.provider.display_name if ctx.route.provider else ""
    return Refusal(
        status,
        f"the {provider} account serving this request failed ({what}); retry: Kleis will use another account",
        code="account_failover",
        error_type="overloaded_error" if messages and status != 429 else None,
        headers={"retry-after": "1", "x-should-retry": "true"},
    )


async def resend(
    ctx: RequestContext,
    account: AccountView,
    tokens: TokenManager,
    client: httpx.AsyncClient,
    timeout: float,
    force_refresh: bool,
) -> httpx.Response | None:
    """Send the request again on `account`; None when its token cannot be had. The attempt becomes the request's
    upstream call once an answer arrives (a re-send that cannot reach the upstream leaves the previous one)."""
    try:
        if force_refresh:  # as bounded as the request path's wait; the refresh itself goes on and stores its answer
            renewal = tokens.refresh(account.id, force=True, newer_than=account.token_version)
            account = await asyncio.wait_for(asyncio.shield(renewal), tokens.request_wait)
        else:
            account = await tokens.fresh(account)
    except (RefreshFailed, TimeoutError) as exc:
        log.info("failover skips account %s: %s", account.id, exc or "its refresh takes too long")
        return None
    ctx.upstream.tried.append(account.id)
    token = account.access_token or ""
    ref = vault.put(token)
    previous = dataclasses.replace(ctx.upstream)
    try:
        request = upstream.start_call(ctx, account, ref)
        return await upstream.send(client, request, ref, token, timeout)
    except httpx.HTTPError:
        ctx.upstream = dataclasses.replace(previous, tried=ctx.upstream.tried)
        raise
    finally:
        vault.release(ref)
        ctx.upstream.token_ref = previous.token_ref  # the re-send's reference is released; the flow's stays


def classify(ctx: RequestContext, response: http.Response, services: Services) -> Signal:
    """What an upstream's error answer says about the account; the account's health and token learn it at once."""
    provider, account, tokens, prepared = ctx.route.provider, ctx.upstream.account, services.tokens, ctx.upstream.prepared
    assert provider is not None and prepared is not None
    status = response.status_code
    body = json_or_none(response.get_content(strict=False) or b"")
    signal = provider.after_error(prepared, provider.classify(status, response.headers, body), body)
    ctx.outcome.drift = signal.drift
    if signal.drift is not None:
        log_once(provider.display_name, signal.drift)
    if signal.kind == SignalKind.AUTH and account is not None and tokens.refused_after_renewal(account):
        # The token issued to replace a refused one is refused too: the provider rejects the account, not the
        # token. Refreshing again would only rotate tokens in a loop; cool the account and let the others serve.
        signal = refused_account()
    if not (ctx.outcome.aggregated and ctx.outcome.error_type):  # keep an in-stream error's own label
        ctx.outcome.error_type = f"upstream_{status}" + (f" {signal.label}" if signal.label else "")
    if account is not None:
        if signal.kind in (SignalKind.AUTH, SignalKind.AUTH_REJECTED):
            tokens.mark_stale(account)  # after a rejection's cooldown, too, the next use refreshes first
        tell_health(account, signal, services)
    return signal


def tell_health(account: AccountView, signal: Signal, services: Services) -> None:
    """The account's health (cooldowns) and quota (a limit reached) learn what the answer said."""
    if services.health is not None:
        services.health.on_signal(account, signal)
    if services.quota is not None:
        services.quota.note_limit(account.id, signal, time.time())


async def try_others(ctx: RequestContext, signal: Signal, attempts: list[AccountView], services: Services) -> http.Response | None:
    """Re-send a non-streaming request on each account in turn until one answers without an account-wide failure;
    the last answer received, or None when no re-send reached an upstream."""
    answer: http.Response | None = None
    failed = ctx.upstream.account
    for account in attempts:
        force = signal.kind == SignalKind.AUTH and failed is not None and account.id == failed.id
        if not force and services.load.full(account.id):
            continue  # at KLEIS_ACCOUNT_MAX_INFLIGHT: a failover must not stampede the next account either
        received = await resend_counted(ctx, account, services, force)
        if received is None:
            continue
        ctx.upstream.retries += 1
        moved_to(ctx, services, received)
        answer = as_flow_response(received)
        answer.headers["x-kleis-request-id"] = ctx.request_id
        ctx.outcome.aggregated = False
        responses.aggregate_response(ctx, answer)
        if answer.status_code < 400:
            return answer
        signal = classify(ctx, answer, services)
        if not should_fail_over(signal):
            return answer
        failed = ctx.upstream.account
    return answer


async def resend_counted(ctx: RequestContext, account: AccountView, services: Services, force: bool) -> httpx.Response | None:
    """`resend`, counted against `account`'s in-flight cap while it runs; the slot goes back to the previous account
    when the re-send gets no answer."""
    held = ctx.upstream.slot
    upstream.hold_slot(ctx, services.load, account.id)
    try:
        received = await resend(ctx, account, services.tokens, services.http, services.config.upstream_timeout, force)
    except httpx.HTTPError as exc:
        log.warning("failover to account %s could not reach the upstream: %s", account.id, exc)
        received = None
    if received is None:
        if held is not None:
            upstream.hold_slot(ctx, services.load, held)
        else:
            upstream.drop_slot(ctx, services.load)
    return received


def moved_to(ctx: RequestContext, services: Services, received: httpx.Response) -> None:
    """The re-send's account now serves the request: the conversation, and the answer's quota."""
    account, now = ctx.upstream.account, time.time()
    if account is None:
        return
    upstream.hold_slot(ctx, services.load, account.id)  # already held for a failover's re-send; a no-op then
    if received.status_code < 400 and ctx.route.bound is None:
        services.affinity.bind(ctx.route.conversation, account.id, now)
    if services.quota is not None and ctx.route.provider is not None:
        headers = {name.lower(): value for name, value in received.headers.items()}
        reading = services.quota.read_answer(account.id, ctx.route.provider, headers, now)
        if reading is not None:
            ctx.outcome.quota_claim, ctx.outcome.quota_overage = reading.claim, reading.overage


def as_flow_response(response: httpx.Response) -> http.Response:
    """A re-sent request's answer as the flow's response: the same header allowlist as the flow's own answer."""
    headers = [
        (k.encode(), v.encode())
        for k, v in response.headers.multi_items()
        if k.lower() not in DROP_RESPONSE_HEADERS and response_headers.allowed(k)
    ]
    return http.Response.make(response.status_code, response.content, headers)
