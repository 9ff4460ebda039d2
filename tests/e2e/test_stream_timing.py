"""Streaming is never buffered: each event reaches the client right after the upstream sends it."""

from __future__ import annotations

import time

import httpx


def test_each_event_arrives_within_50ms_of_its_send(kleis) -> None:
    kleis.add_account()
    kleis.anthropic.text_chunks = [f"w{i} " for i in range(10)]
    kleis.anthropic.stream_delay = 0.1
    kleis.anthropic.stream_stamp = True
    lags: list[float] = []
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        body = {
            "model": "loop/claude-t",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "count"}],
            "tools": [{"name": "t", "input_schema": {}}],
        }  # a tool, so the rewrite path is active
        with client.stream("POST", "/v1/messages", json=body, headers=kleis.headers()) as response:
            for line in response.iter_lines():
                if line.startswith("id: "):
                    lags.append(time.time() - float(line[4:]))
    assert len(lags) >= 10
    assert max(lags) < 0.05, f"events arrived up to {max(lags) * 1000:.1f} ms after they were sent"
    sends = kleis.anthropic.sent_at
    assert sends[-1] - sends[0] > 0.9  # the upstream really spaced them out
