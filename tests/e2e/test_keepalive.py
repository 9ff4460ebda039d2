"""SSE keep-alives during upstream silence: the timer logic on mitmproxy's own test flows, then through a listener.
Here the parts that need a listener; the rest: tests/addons/test_keepalive.py."""

from __future__ import annotations

import dataclasses

import anthropic
import httpx

from addons.services import Parts
from tests.fakes.base import Stream, sse


def test_a_long_silence_in_a_stream_carries_keepalives_and_clients_read_it_unchanged(live_kleis, fake_anthropic) -> None:
    live = live_kleis(Parts(), sse_keepalive=0.4)
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
