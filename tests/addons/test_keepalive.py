"""SSE keep-alives during upstream silence: the timer logic on mitmproxy's own test flows, then through a listener."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import anthropic
import httpx
import pytest
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons

from addons import client_wire
from addons.keepalive import KEEPALIVE, SseKeepAlive
from addons.services import Parts
from engine.streaming import StreamRewriter
from tests.fakes.base import Stream, sse
from tests.support.live import start_kleis
from tests.support.mitm import FakeHandler, streaming_flow


def test_a_silent_stream_gets_a_framed_comment_and_a_busy_one_does_not() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        with taddons.context(Proxyserver()) as tctx:
            flow = streaming_flow()
            handler = FakeHandler(flow.client_conn)
            tctx.master.addons.get("proxyserver").connections[flow.client_conn.id] = handler
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
        handler = FakeHandler(flow.client_conn)
        tctx.master.addons.get("proxyserver").connections[flow.client_conn.id] = handler
        assert client_wire.write_event(tctx.master, flow, KEEPALIVE)
        assert handler.transports[flow.client_conn].writer.written == [KEEPALIVE]


@pytest.mark.e2e
def test_a_long_silence_in_a_stream_carries_keepalives_and_clients_read_it_unchanged(
    store, config, fake_oauth, fake_anthropic, fake_openai
) -> None:
    live = start_kleis(store, config.replace(sse_keepalive=0.4), fake_oauth, fake_anthropic, fake_openai, parts=Parts())
    try:
        live.add_account()
        start = {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "usage": {}}}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "thought long"}}
        events = [
            sse("message_start", start),
            sse("content_block_start", block),
            sse("content_block_delta", delta),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
        body = {"model": "loop/claude-k", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        thinking = Stream(events, pauses={2: 1.3})  # headers and two events, then 1.3 s of silence (keep-alive: 0.4 s)
        fake_anthropic.enqueue("POST", "/v1/messages", thinking, dataclasses.replace(thinking))
        with httpx.Client(base_url=live.url, timeout=20) as client:
            with client.stream("POST", "/v1/messages", json=body, headers=live.headers()) as response:
                raw = "".join(response.iter_text())
        comments = raw.count(": keep-alive\n\n")
        assert comments >= 2, raw
        assert raw.replace(": keep-alive\n\n", "") == b"".join(events).decode()  # between events, never inside one
        sdk = anthropic.Anthropic(base_url=live.url, auth_token=live.key, max_retries=0)
        with sdk.messages.stream(model="loop/claude-k", max_tokens=5, messages=[{"role": "user", "content": "hi"}]) as stream:
            assert stream.get_final_text() == "thought long"
    finally:
        live.proxy.stop()
