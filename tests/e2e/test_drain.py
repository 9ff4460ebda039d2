"""The drain on SIGTERM, piece by piece: ending a request in its protocol's shape, waiting for the ones in flight,
refusing new requests on open connections (the whole `kleis.py serve` run is in test_shutdown).
Here the parts that need a listener; the rest: tests/addons/test_drain.py."""

from __future__ import annotations

import threading
import time

import httpx

from addons.services import Parts
from tests.fakes.base import Stream, sse


def test_a_new_request_on_an_open_connection_during_the_drain_is_refused(live_kleis, fake_anthropic) -> None:
    live = live_kleis(Parts(), shutdown_grace=3)
    live.add_account()
    body = {"model": "loop/claude-d", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    outcome: dict = {}

    def long_stream() -> None:
        with httpx.Client(base_url=live.url, timeout=20) as other:
            with other.stream("POST", "/v1/messages", json={**body, "stream": True}, headers=live.headers()) as response:
                outcome["stream"] = "".join(response.iter_text())

    with httpx.Client(base_url=live.url, timeout=20) as client:
        assert client.post("/v1/messages", json=body, headers=live.headers()).status_code == 200  # a keep-alive connection
        fake_anthropic.enqueue("POST", "/v1/messages", Stream([sse("message_start", {"type": "message_start"})] * 10, delay=0.5))
        streaming = threading.Thread(target=long_stream)
        streaming.start()
        deadline = time.time() + 10
        while len(fake_anthropic.received("/v1/messages")) < 2 and time.time() < deadline:
            time.sleep(0.02)
        draining = threading.Thread(target=live.proxy.drain)
        draining.start()
        while not live.proxy.services.drain.draining:
            time.sleep(0.01)
        refused = client.post("/v1/messages", json=body, headers=live.headers())
        assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
        assert refused.headers["connection"] == "close" and refused.headers["retry-after"] == "1"
        streaming.join(20)
        draining.join(20)
    assert "event: error" in outcome["stream"] and "shutting down" in outcome["stream"]
    assert len(fake_anthropic.received("/v1/messages")) == 2  # the refused one never went upstream
