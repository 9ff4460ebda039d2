"""SSE keep-alives: after KLEIS_SSE_KEEPALIVE seconds without a byte from the upstream, the client gets a comment.

During long reasoning an upstream may send nothing for minutes, and the client's (or a proxy's in between) idle
timeout would cut the turn. An SSE comment (`: keep-alive`) is ignored by every SSE parser (the SDKs, Codex CLI,
OpenCode's), so the event stream the client reads is unchanged; it is written between two of the stream's events
(addons.client_wire), never inside one, and never once the stream has ended or passes through unparsed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mitmproxy import http
from mitmproxy.master import Master

from addons import client_wire
from engine.streaming import StreamRewriter

log = logging.getLogger(__name__)

KEEPALIVE = b": keep-alive\n\n"


class SseKeepAlive:
    """One timer per streamed flow, re-armed for the silence left; cancelled when the flow ends."""

    def __init__(self, interval: float, master_getter: Callable[[], Master]) -> None:
        self.interval = interval
        self._master_getter = master_getter
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self.sent = 0

    def start(self, flow: http.HTTPFlow, rewriter: StreamRewriter) -> None:
        if self.interval > 0:
            self._arm(flow, rewriter, self.interval)

    def stop(self, flow: http.HTTPFlow) -> None:
        timer = self._timers.pop(id(flow), None)
        if timer is not None:
            timer.cancel()

    def _arm(self, flow: http.HTTPFlow, rewriter: StreamRewriter, delay: float) -> None:
        self._timers[id(flow)] = asyncio.get_running_loop().call_later(delay, self.tick, flow, rewriter)

    def tick(self, flow: http.HTTPFlow, rewriter: StreamRewriter, now: float | None = None) -> None:
        """Write a keep-alive if the stream has been silent for the interval; re-arm for the silence left."""
        self._timers.pop(id(flow), None)
        if rewriter.ended or rewriter.passthrough or flow.error is not None or not flow.live:
            return
        now = time.time() if now is None else now
        silent = now - rewriter.last_activity
        if silent + 0.001 < self.interval:
            self._arm(flow, rewriter, self.interval - silent)
            return
        try:
            written = client_wire.write_event(self._master_getter(), flow, KEEPALIVE)
        except Exception:  # never let a keep-alive break the proxy
            log.exception("sending an SSE keep-alive failed")
            return
        if written:
            self.sent += 1
            rewriter.last_activity = now
            self._arm(flow, rewriter, self.interval)
