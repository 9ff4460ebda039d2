"""SSE keep-alives during upstream silence: the timer logic on mitmproxy's own test flows, then through a listener.
Here the parts that need no socket; through listeners: tests/e2e/test_keepalive.py."""

from __future__ import annotations

import asyncio
import time

from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons

from addons import client_wire
from addons.keepalive import KEEPALIVE, SseKeepAlive
from engine.streaming import StreamRewriter
from tests.support.mitm import registered, streaming_flow


def test_a_silent_stream_gets_a_framed_comment_and_a_busy_one_does_not() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        with taddons.context(Proxyserver()) as tctx:
            flow = streaming_flow()
            handler = registered(tctx.master, flow)
            keepalive = SseKeepAlive(15.0, lambda: tctx.master)
            rewriter = StreamRewriter()
            now = rewriter.last_activity
            keepalive.tick(flow, rewriter, now=now + 5)  # 5 s of silence: not yet
            keepalive.tick(flow, rewriter, now=now + 15)  # 15 s: one comment
            keepalive.tick(flow, rewriter, now=now + 20)  # 5 s after that comment: not yet
            rewriter(b"event: ping\ndata: {}\n\n")  # the upstream speaks
            keepalive.tick(flow, rewriter, now=rewriter.last_activity + 14)
            keepalive.stop(flow)
            return handler.transports[flow.client_conn].writer.written, keepalive.sent

    written, sent = asyncio.run(scenario())
    assert written == [b"%x\r\n%s\r\n" % (len(KEEPALIVE), KEEPALIVE)] and sent == 1


def test_no_keepalive_after_the_end_in_passthrough_or_without_a_client() -> None:
    async def scenario() -> int:
        with taddons.context(Proxyserver()) as tctx:
            keepalive = SseKeepAlive(1.0, lambda: tctx.master)
            ended, passthrough, orphan = StreamRewriter(), StreamRewriter(), StreamRewriter()
            ended(b"")
            passthrough.passthrough = True
            for rewriter in (ended, passthrough, orphan):  # orphan: no client connection registered
                keepalive.tick(streaming_flow(), rewriter, now=time.time() + 60)
            return keepalive.sent

    assert asyncio.run(scenario()) == 0


def test_an_unchunked_stream_gets_the_bare_comment() -> None:
    with taddons.context(Proxyserver()) as tctx:
        flow = streaming_flow(chunked=False)
        handler = registered(tctx.master, flow)
        assert client_wire.write_event(tctx.master, flow, KEEPALIVE)
        assert handler.transports[flow.client_conn].writer.written == [KEEPALIVE]
