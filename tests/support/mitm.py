"""Stand-ins for the parts of mitmproxy's connection handling that addons.client_wire writes through (no sockets)."""

from __future__ import annotations

import dataclasses

from mitmproxy import http
from mitmproxy.test import tflow


class FakeWriter:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True


@dataclasses.dataclass
class FakeIO:
    writer: FakeWriter


class FakeHandler:
    """The part of mitmproxy's ConnectionHandler that addons.client_wire uses."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.transports = {client: FakeIO(FakeWriter())}


def streaming_flow(chunked: bool = True) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    assert flow.response is not None
    flow.response.headers["content-type"] = "text/event-stream"
    if chunked:
        flow.response.headers["transfer-encoding"] = "chunked"
    return flow
