"""The response side of a proxied call as plain functions: stream or buffer, rewrite, aggregate, read usage."""

from __future__ import annotations

import json

from mitmproxy import http

from core.sse import SSEParser
from engine.context import RequestContext
from engine.streaming import StreamRewriter


def is_event_stream(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def make_stream_rewriter(ctx: RequestContext) -> StreamRewriter:
    """The per-event pipeline for a streamed answer: the provider's rewrite and the usage reader."""
    provider, prepared, protocol = ctx.route.provider, ctx.upstream.prepared, ctx.client.protocol
    assert provider is not None and prepared is not None and protocol is not None
    transform = provider.stream_transformer(prepared, protocol)
    observers = [ctx.upstream.usage.event] if ctx.upstream.usage is not None else []
    return StreamRewriter(transform, observers)


def rewrite_body(ctx: RequestContext, status: int, content: bytes) -> bytes | None:
    """A buffered 2xx JSON body after the provider's rewrite, usage read on the way; None: unchanged."""
    provider, prepared, protocol = ctx.route.provider, ctx.upstream.prepared, ctx.client.protocol
    assert provider is not None and prepared is not None and protocol is not None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if ctx.upstream.usage is not None:
        ctx.upstream.usage.body(body)
    rewritten = provider.rewrite_response(prepared, protocol, status, body)
    return None if rewritten is None else json.dumps(rewritten, ensure_ascii=False).encode()


def aggregate_stream(ctx: RequestContext, content: bytes) -> tuple[int, bytes]:
    """A whole upstream stream turned into the one JSON answer a non-streaming client asked for."""
    provider, prepared = ctx.route.provider, ctx.upstream.prepared
    assert provider is not None and prepared is not None
    parser = SSEParser()
    events = parser.feed(content) + parser.close()
    if ctx.upstream.usage is not None:
        for event in events:
            ctx.upstream.usage.event(event)
    status, body = provider.aggregate(prepared, events)
    return status, json.dumps(body, ensure_ascii=False).encode()


def aggregate_response(ctx: RequestContext, response: http.Response) -> None:
    """A non-streaming client of a streaming-only upstream gets one JSON answer (its status may be an error)."""
    prepared, provider = ctx.upstream.prepared, ctx.route.provider
    assert prepared is not None and provider is not None
    if not prepared.aggregate or response.status_code >= 300 or not is_event_stream(response.headers.get("content-type", "")):
        return
    status, body = aggregate_stream(ctx, response.get_content(strict=False) or b"")
    response.status_code = status
    response.headers["content-type"] = "application/json"
    response.headers.pop("content-encoding", None)
    response.content = body
    ctx.outcome.status = status
    ctx.outcome.aggregated = True
    if status >= 400:
        ctx.outcome.error_type = provider.stream_outcome(prepared)[0]
