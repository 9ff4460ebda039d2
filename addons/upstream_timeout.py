"""A deadline for an upstream's response headers; past it the client gets a 504 in its protocol's shape.

mitmproxy 11 has no such timeout (only a 10-minute idle watchdog) and cannot kill a flow in transit
(mitmproxy#4711). So, at the deadline:
- connected but silent: a synthetic `504` response is fed into the server connection as if the upstream sent
  it (with `connection: close`, so the connection is dropped after it) and passes through the addon's hooks;
- still connecting: the connection task is cancelled with a marker that `addons.mitm_errors` turns into 504.

An upstream may also have sent part of its head and stopped (a status line, some headers, never the blank line).
The synthetic response then lands after those bytes, and mitmproxy's parser refuses the mixture with its own 502
("Cannot parse HTTP response: Invalid header line: b'…'"), quoting the line it choked on. So the synthetic
response's reason phrase is the timeout marker: whatever line the mixture breaks at carries it, and
`addons.mitm_errors` answers 504 for any error message that holds the marker. (If the mixture parses — a header
value cut short takes our status line as its tail — the response carries TIMEOUT_HEADER and becomes the 504 as
usual.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from mitmproxy import http
from mitmproxy.master import Master

from addons import compat
from addons.mitm_errors import TIMEOUT_MARKER

log = logging.getLogger(__name__)

TIMEOUT_HEADER = "x-kleis-upstream-timeout"


def synthetic_timeout_response() -> bytes:
    body = json.dumps({"error": {"message": "upstream timeout", "type": "timeout_error"}}).encode()
    return (
        b"HTTP/1.1 504 "
        + TIMEOUT_MARKER.encode()
        + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        + TIMEOUT_HEADER.encode()
        + b": 1\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class UpstreamDeadlines:
    """One timer per forwarded flow, cancelled when its response headers arrive or it fails."""

    def __init__(self, master_getter: Callable[[], Master]) -> None:
        self._master_getter = master_getter
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def start(self, flow: http.HTTPFlow, seconds: float) -> None:
        self.cancel(flow)
        loop = asyncio.get_running_loop()
        self._timers[id(flow)] = loop.call_later(seconds, self._expire, flow)

    def cancel(self, flow: http.HTTPFlow) -> None:
        timer = self._timers.pop(id(flow), None)
        if timer is not None:
            timer.cancel()

    def _expire(self, flow: http.HTTPFlow) -> None:
        self._timers.pop(id(flow), None)
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        try:
            handler = compat.connection_handler(self._master_getter(), flow)
            if handler is None:
                return
            if compat.server_connected(handler, flow.server_conn):
                log.warning("upstream %s sent no response headers in time: answering 504", flow.request.host)
                compat.feed_server(handler, flow.server_conn, synthetic_timeout_response())
            elif compat.cancel_connect(handler, (flow.request.host, flow.request.port), TIMEOUT_MARKER):
                log.warning("connecting to upstream %s took too long: answering 504", flow.request.host)
        except Exception:  # never let the watchdog break the proxy
            log.exception("upstream timeout handling failed")
