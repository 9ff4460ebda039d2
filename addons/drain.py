"""Graceful shutdown on SIGTERM/SIGINT: stop accepting, let requests in flight finish, end the rest cleanly, exit.

1. The listeners close (new connections are refused); a new request on an open keep-alive connection gets a
   503 in its protocol's shape (`retry-after: 1`), and every answer from now on says `connection: close`.
2. Requests in flight — streams included — and token refreshes in flight get up to KLEIS_SHUTDOWN_GRACE seconds.
3. What is still running then is ended in the caller's protocol: a stream gets an error event and a proper end
   of body, a request still waiting gets a 503. Each is recorded as usage (`shutdown`, incomplete).
4. Every client connection is closed, so mitmproxy ends each connection's task itself (a task cancelled at exit
   is what printed tracebacks); then the master shuts down and the usage writer flushes what is queued.
A second signal ends the grace at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mitmproxy import http
from mitmproxy.master import Master

from addons import client_wire, compat
from addons.errors import error_response
from core.client_errors import Refusal, stream_error_event
from engine.context import RequestContext
from providers.lifecycle import TokenManager

if TYPE_CHECKING:
    from addons.kleis import Kleis

log = logging.getLogger(__name__)

CLOSE_WAIT = 3.0  # seconds for mitmproxy to end the connections Kleis closed
POLL = 0.05


def shutting_down(what: str) -> Refusal:
    return Refusal(
        503,
        f"Kleis is shutting down: {what}; retry",
        code="shutting_down",
        headers={"retry-after": "1", "x-should-retry": "true"},
    )


class Drain:
    def __init__(self, grace: float, master_getter: Callable[[], Master], tokens: TokenManager) -> None:
        self.grace = grace
        self._master_getter = master_getter
        self._tokens = tokens
        self._kleis: Kleis | None = None
        self._task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self.draining = False
        self.finished = 0  # requests that ended by themselves during the grace
        self.cut = 0  # requests ended by the drain

    def attach(self, kleis: Kleis) -> None:
        self._kleis = kleis

    def begin(self) -> None:
        """The signal handler (on the event loop): start draining; a second call ends the grace at once."""
        if self._task is not None:
            log.warning("second signal: ending the requests still in flight now")
            self._hurry.set()
            return
        log.warning("shutting down: no new connections; requests in flight get up to %.0fs", self.grace)
        self._task = asyncio.get_running_loop().create_task(self.run(), name="kleis drain")

    async def run(self) -> None:
        master = self._master_getter()
        self.draining = True
        try:
            await self._stop_listening(master)
            started = len(self._in_flight())
            log.info("%d requests in flight at shutdown", started)
            await self._wait_for_flights()
            for flow, ctx in self._in_flight():
                self.cut_request(master, flow, ctx)
            self.finished = max(0, started - self.cut)
            log.warning("shutdown: %d requests finished in the grace, %d ended by it", self.finished, self.cut)
            await self._close_connections(master)
        except Exception:
            log.exception("draining failed; shutting down at once")
        finally:
            master.shutdown()

    async def _stop_listening(self, master: Master) -> None:
        for instance in compat.listeners(master):
            try:
                await instance.stop()
            except Exception as exc:
                log.warning("closing the listener %s failed: %s", instance.mode.full_spec, exc)

    async def _wait_for_flights(self) -> None:
        deadline = time.monotonic() + self.grace
        while (self._in_flight() or self._tokens.pending()) and time.monotonic() < deadline and not self._hurry.is_set():
            try:
                await asyncio.wait_for(self._hurry.wait(), POLL)
            except TimeoutError:
                pass

    def _in_flight(self) -> list[tuple[http.HTTPFlow, RequestContext]]:
        return self._kleis.in_flight() if self._kleis is not None else []

    def cut_request(self, master: Master, flow: http.HTTPFlow, ctx: RequestContext) -> None:
        """End one request in its caller's protocol and record it (incomplete, `shutdown`)."""
        outcome = ctx.outcome
        refusal = shutting_down("the request was still running when its grace (KLEIS_SHUTDOWN_GRACE) ended")
        if outcome.streamed:
            client_wire.end_stream(master, flow, stream_error_event(ctx.protocol or ctx.error_protocol, refusal))
        else:
            client_wire.answer(master, flow, error_response(ctx.error_protocol, refusal, ctx.request_id))
            outcome.status = 503
        outcome.error_type = "shutdown"
        self.cut += 1
        if self._kleis is not None:
            self._kleis.finish(flow, ctx)

    async def _close_connections(self, master: Master) -> None:
        client_wire.close_all(master)
        deadline = time.monotonic() + CLOSE_WAIT
        while compat.connection_handlers(master) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
