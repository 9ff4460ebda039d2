"""The drain on SIGTERM, piece by piece: ending a request in its protocol's shape, waiting for the ones in flight,
refusing new requests on open connections (the whole `kleis.py serve` run is in test_shutdown).
Here the parts that need no socket; through listeners: tests/e2e/test_drain.py."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons, tflow

from addons import drain as drain_module
from addons.drain import Drain
from core.protocol import Protocol
from engine.context import begin
from tests.support.mitm import registered, streaming_flow


class FakeKleis:
    def __init__(self, flights: list) -> None:
        self.flights = flights
        self.finished: list[str] = []

    def in_flight(self) -> list:
        return list(self.flights)

    def finish(self, flow, ctx) -> None:
        ctx.outcome.done = True
        self.finished.append(ctx.request_id)
        self.flights = [(f, c) for f, c in self.flights if c is not ctx]


class NoRefreshes:
    def pending(self) -> list:
        return []


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses", "/v1/chat/completions"])
def test_a_cut_stream_ends_with_an_error_event_and_a_proper_end(path: str) -> None:
    with taddons.context(Proxyserver()) as tctx:
        flow = streaming_flow()
        handler = registered(tctx.master, flow)
        ctx = begin("POST", path)
        ctx.outcome.streamed, ctx.outcome.status = True, 200
        kleis = FakeKleis([(flow, ctx)])
        drain = Drain(0, lambda: tctx.master, NoRefreshes())
        drain.attach(kleis)
        drain.cut_request(tctx.master, flow, ctx)
        writer = handler.transports[flow.client_conn].writer
    data = b"".join(writer.written)
    assert data.endswith(b"\r\n0\r\n\r\n") and writer.closed
    event = data.split(b"\r\n", 1)[1]
    assert b"shutting down" in event and (b"event: error\n" in event) is (ctx.protocol is not Protocol.CHAT)
    assert (b"event: response.failed\n" in event) is (ctx.protocol is Protocol.RESPONSES)
    assert (ctx.outcome.error_type, ctx.outcome.status, kleis.finished) == ("shutdown", 200, [ctx.request_id])


def test_a_cut_request_still_waiting_gets_a_503_in_its_shape() -> None:
    with taddons.context(Proxyserver()) as tctx:
        flow = tflow.tflow()
        handler = registered(tctx.master, flow)
        ctx = begin("POST", "/v1/messages")
        drain = Drain(0, lambda: tctx.master, NoRefreshes())
        drain.attach(FakeKleis([(flow, ctx)]))
        drain.cut_request(tctx.master, flow, ctx)
        writer = handler.transports[flow.client_conn].writer
    head, _, body = b"".join(writer.written).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"connection: close" in head.lower() and b"retry-after: 1" in head.lower()
    assert json.loads(body)["error"]["type"] == "overloaded_error" and writer.closed
    assert ctx.outcome.status == 503 and ctx.outcome.error_type == "shutdown"


def test_the_drain_waits_for_requests_that_finish_and_cuts_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drain_module, "CLOSE_WAIT", 0.1)  # the fake connection never goes away by itself

    async def scenario() -> tuple[Drain, FakeKleis, list[str], float]:
        with taddons.context(Proxyserver()) as tctx:
            quick, slow = tflow.tflow(), tflow.tflow()
            registered(tctx.master, slow)
            quick_ctx, slow_ctx = begin("POST", "/v1/messages"), begin("POST", "/v1/messages")
            kleis = FakeKleis([(quick, quick_ctx), (slow, slow_ctx)])
            shut: list[str] = []
            tctx.master.shutdown = lambda: shut.append("shutdown")
            drain = Drain(0.6, lambda: tctx.master, NoRefreshes())
            drain.attach(kleis)
            asyncio.get_running_loop().call_later(0.2, kleis.finish, quick, quick_ctx)  # ends by itself
            started = time.monotonic()
            drain.begin()
            assert drain._task is not None
            await drain._task
            return drain, kleis, shut, time.monotonic() - started

    drain, kleis, shut, took = asyncio.run(scenario())
    assert (drain.finished, drain.cut, shut) == (1, 1, ["shutdown"]) and 0.6 <= took < 2
    assert len(kleis.finished) == 2
