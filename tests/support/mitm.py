"""mitmproxy's connection handling without sockets: a real ConnectionHandler whose client writer records what
addons.client_wire writes through addons.compat."""

from __future__ import annotations

from mitmproxy import connection, http
from mitmproxy.master import Master
from mitmproxy.options import Options
from mitmproxy.proxy import events, server
from mitmproxy.proxy.context import Context
from mitmproxy.test import tflow


class FakeWriter:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True


class FakeHandler(server.ConnectionHandler):
    """mitmproxy's ConnectionHandler as it is (its client, its transports), with a recording writer for the client;
    no hooks run, and what a server connection hands it (`server_event`) is recorded, not processed."""

    def __init__(self, client: connection.Client) -> None:
        super().__init__(Context(client, Options()))
        self.writer = FakeWriter()
        self.transports[client] = server.ConnectionIO(writer=self.writer)  # type: ignore[arg-type]
        self.events: list[events.Event] = []

    async def handle_hook(self, hook: object) -> None:
        return None

    async def server_event(self, event: events.Event) -> None:
        self.events.append(event)


def registered(master: Master, flow: http.HTTPFlow) -> FakeHandler:
    """A FakeHandler for `flow`'s client connection, live in the proxyserver addon as mitmproxy registers its own."""
    handler = FakeHandler(flow.client_conn)
    master.addons.get("proxyserver").connections[flow.client_conn.id] = handler
    return handler


def streaming_flow(chunked: bool = True) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    assert flow.response is not None
    flow.response.headers["content-type"] = "text/event-stream"
    if chunked:
        flow.response.headers["transfer-encoding"] = "chunked"
    return flow
