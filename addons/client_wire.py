"""Writing to a client's connection beside mitmproxy's own writes: SSE keep-alive comments, the last event of a
stream ended at shutdown, a whole answer to a request cut at shutdown, and closing the connection.

mitmproxy writes a streamed response chunk by chunk, each one whole (`_http1.Http1Server.send`), and the stream
callable (engine.streaming) hands it complete SSE events only: between two of its writes the client's stream
is always at an event boundary, where one more event (or comment) can go, framed as mitmproxy frames its own.
The connection's writer is found through addons.compat (mitmproxy's connection internals).
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.master import Master
from mitmproxy.net.http import http1

from addons import compat

END_OF_CHUNKS = b"0\r\n\r\n"


def _writer(master: Master, flow: http.HTTPFlow) -> compat.Writer | None:
    handler = compat.connection_handler(master, flow)
    return compat.client_writer(handler) if handler is not None else None


def chunked(response: http.Response) -> bool:
    return "chunked" in response.headers.get("transfer-encoding", "").lower()


def write_event(master: Master, flow: http.HTTPFlow, data: bytes) -> bool:
    """One more piece of a streamed response body (a complete SSE event); False when the client is gone."""
    writer = _writer(master, flow)
    if writer is None or flow.response is None:
        return False
    writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked(flow.response) else data)
    return True


def end_stream(master: Master, flow: http.HTTPFlow, last: bytes) -> bool:
    """A final event, then the end of the body (the chunked terminator) and of the connection."""
    if not write_event(master, flow, last):
        return False
    writer = _writer(master, flow)
    if writer is not None and flow.response is not None and chunked(flow.response):
        writer.write(END_OF_CHUNKS)
    close(master, flow)
    return True


def answer(master: Master, flow: http.HTTPFlow, response: http.Response) -> bool:
    """A whole answer to a request none has been sent for, then the end of the connection."""
    writer = _writer(master, flow)
    if writer is None:
        return False
    response.headers["connection"] = "close"
    writer.write(http1.assemble_response(response))
    close(master, flow)
    return True


def close(master: Master, flow: http.HTTPFlow) -> None:
    writer = _writer(master, flow)
    if writer is not None:
        writer.close()


def close_all(master: Master) -> int:
    """Close every client connection (idle keep-alive ones included); mitmproxy then ends each handler itself."""
    closed = 0
    for handler in compat.connection_handlers(master):
        writer = compat.client_writer(handler)
        if writer is not None:
            writer.close()
            closed += 1
    return closed
