"""The response side of a proxied call as plain functions: stream or buffer, rewrite, shape errors, read usage."""

from __future__ import annotations

import json

from addons.pipeline import RequestContext
from core.sse import SSEParser
from addons.streaming import StreamRewriter


def is_event_stream(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def make_stream_rewriter(ctx: RequestContext, on_end=None) -> StreamRewriter:  # type: ignore[no-untyped-def]
    """The per-event pipeline for a streamed answer: the provider's rewrite and the usage reader."""
    assert ctx.provider is not None and ctx.upstream is not None and ctx.protocol is not None
    transform = ctx.provider.stream_transformer(ctx.upstream, ctx.protocol)
    observers = [ctx.usage.event] if ctx.usage is not None else []
    return StreamRewriter(transform, observers, on_end=on_end)


def rewrite_body(ctx: RequestContext, status: int, content: bytes) -> bytes | None:
    """A buffered 2xx JSON body after the provider's rewrite, usage read on the way; None: unchanged."""
    assert ctx.provider is not None and ctx.upstream is not None and ctx.protocol is not None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if ctx.usage is not None:
        ctx.usage.body(body)
    rewritten = ctx.provider.rewrite_response(ctx.upstream, ctx.protocol, status, body)
    return None if rewritten is None else json.dumps(rewritten, ensure_ascii=False).encode()


def aggregate_stream(ctx: RequestContext, content: bytes) -> tuple[int, bytes]:
    """A whole upstream stream turned into the one JSON answer a non-streaming client asked for."""
    assert ctx.provider is not None and ctx.upstream is not None
    parser = SSEParser()
    events = parser.feed(content) + parser.close()
    if ctx.usage is not None:
        for event in events:
            ctx.usage.event(event)
    status, body = ctx.provider.aggregate(ctx.upstream, events)
    return status, json.dumps(body, ensure_ascii=False).encode()
