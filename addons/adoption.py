"""One more attempt after Kleis adopted a value a provider's refusal named (e.g. the Claude Code version it requires).

- A non-streaming request is re-sent once, on the same account, now carrying the adopted value; the client sees only
  the second answer.
- A streaming request cannot be re-sent without buffering the new stream (mitmproxy streams only the flow's own
  upstream), and nothing has reached the client yet: it gets a retryable error (`x-should-retry: true`,
  `retry-after: 1`) whose message says what Kleis adopted, and its SDK's automatic retry carries the new value.
A request is attempted again at most once for this reason; a refusal that names nothing newer is passed on.
"""

from __future__ import annotations

import logging

import httpx
from mitmproxy import http

from addons import failover, responses
from addons.errors import error_response
from addons.services import Services
from core.client_errors import Refusal
from core.protocol import Protocol
from engine.context import RequestContext
from providers.base import Signal

log = logging.getLogger(__name__)


def retry_refusal(ctx: RequestContext, signal: Signal) -> Refusal:
    """What a streaming client gets: the reason and what Kleis changed, and an invitation to retry at once."""
    assert signal.drift is not None
    messages = ctx.client.protocol is Protocol.MESSAGES
    return Refusal(
        503,
        f"{signal.drift.hint} Retry the request: it will carry the new value.",
        code="retry_with_adopted_value",
        error_type="overloaded_error" if messages else None,
        headers={"retry-after": "1", "x-should-retry": "true"},
    )


async def answer_again(ctx: RequestContext, signal: Signal, services: Services) -> http.Response | None:
    """The answer to give instead of the refusal, or None to pass the refusal on (no attempt left or possible)."""
    account = ctx.upstream.account
    if ctx.upstream.drift_retries >= 1 or account is None or ctx.protocol is None:
        return None
    ctx.upstream.drift_retries += 1
    if ctx.client.stream:
        ctx.outcome.drift = None  # the refusal below carries the hint already
        return error_response(ctx.protocol, retry_refusal(ctx, signal), ctx.request_id)
    current = services.follower.account(account.id) or account
    try:
        received = await failover.resend(ctx, current, services.tokens, services.http, services.config.upstream_timeout, False)
    except httpx.HTTPError as exc:
        log.warning("the second attempt after adopting a value could not reach the upstream: %s", exc)
        return None
    if received is None:
        return None
    ctx.upstream.retries += 1
    failover.moved_to(ctx, services, received)  # the answer's quota headers, as for any re-send
    answer = failover.as_flow_response(received)
    answer.headers["x-kleis-request-id"] = ctx.request_id
    ctx.outcome.aggregated = False
    responses.aggregate_response(ctx, answer)
    if answer.status_code >= 400:
        failover.classify(ctx, answer, services)  # labels the usage record; no third attempt
    else:
        ctx.outcome.drift = None
        ctx.outcome.error_type = f"retried after adopting: {ctx.outcome.error_type}"  # the usage record says why it took two
    return answer
