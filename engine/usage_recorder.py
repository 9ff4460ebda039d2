"""Usage recording off the hot path (an addon): one event per request into a bounded buffer, written in batches by a thread.

The request path only builds a dict and appends it to the buffer (never blocks: a full buffer drops the event and
counts it). It does not wake the writer per event (a thread woken on every request competes with the event loop
for the GIL): the writer wakes every `interval`, or when a batch is full, inserts batches (idempotent on request
id), retries a failed batch with backoff, updates the keys' last-used times, deletes events past the retention
once a day, and flushes on shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

import peewee

from engine.context import RequestContext
from providers.pricing import Prices, usage_cost
from store import budgets as budget_store
from store import keys as key_store
from store import usage as usage_store
from store.db import describe_store_error

log = logging.getLogger(__name__)

# What a store answers about the row itself (it would refuse it again): everything else is the store being away.
DATA_ERRORS = (peewee.IntegrityError, peewee.DataError, ValueError, TypeError, UnicodeError)


class PendingEvents:
    """A bounded FIFO the event loop appends to and the writer thread drains; deque operations are atomic."""

    def __init__(self, maxsize: int, on_batch: int, wake: threading.Event) -> None:
        self._items: collections.deque[dict[str, Any]] = collections.deque()
        self.maxsize = maxsize
        self._on_batch = on_batch
        self._wake = wake

    def put_nowait(self, row: dict[str, Any]) -> None:
        if len(self._items) >= self.maxsize:
            raise queue.Full
        self._items.append(row)
        if len(self._items) == self._on_batch:  # a full batch: no need to wait for the interval
            self._wake.set()

    def take(self, limit: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while len(rows) < limit:
            try:
                rows.append(self._items.popleft())
            except IndexError:
                break
        return rows

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items


# Outcomes of a request that did not run to its end (the usage row's `incomplete`).
INTERRUPTED = frozenset({"stream_interrupted", "client_disconnected", "upstream_cut", "shutdown"})


def clean(text: str, limit: int) -> str:
    """Text any database stores: lone surrogates and NUL bytes (a client can put them in a model name) replaced."""
    return text[:limit].encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")


PriceLookup = Callable[[str, str], "Prices | None"]  # (provider, served model) → list prices


def event_from_context(ctx: RequestContext, now: float, prices: PriceLookup | None = None) -> dict[str, Any]:
    """The UsageEvent row for a finished request, its cost at the list prices `prices` knows now (pure: no I/O)."""
    client, route, call, outcome = ctx.client, ctx.route, ctx.upstream, ctx.outcome
    usage = call.usage.usage if call.usage is not None else None
    error_type = outcome.error_type
    interrupted = error_type in INTERRUPTED
    if outcome.streamed and outcome.status < 400 and call.usage is not None and not call.usage.ended and not interrupted:
        interrupted = True  # the upstream closed the stream cleanly, but before its end marker
        error_type = error_type or "stream_ended_early"
    row: dict[str, Any] = {
        "request_id": client.request_id,
        "created_at": client.started,
        "key_id": client.key.id if client.key else None,
        "account_id": call.account.id if call.account else None,
        "provider": route.resolution.provider if route.resolution else "",
        "protocol": client.protocol.value if client.protocol else "",
        "model": clean(client.model, 200),
        "upstream_model": clean(route.resolution.model if route.resolution else "", 200),
        "status": outcome.status,
        "error_type": clean(error_type, 100),
        "streamed": outcome.streamed,
        "incomplete": interrupted,  # the stream did not reach its end (client left, upstream cut)
        "ttfb_ms": round((outcome.first_byte_at - client.started) * 1000, 2) if outcome.first_byte_at else None,
        "latency_ms": round((now - client.started) * 1000, 2),
        "input_tokens": usage.input_tokens if usage else 0,
        "output_tokens": usage.output_tokens if usage else 0,
        "cache_read_tokens": usage.cache_read_tokens if usage else 0,
        "cache_write_tokens": usage.cache_write_tokens if usage else 0,
        "reasoning_tokens": usage.reasoning_tokens if usage else 0,
        "raw_usage": clean(usage.raw_json(), 20000) if usage else "",
        "quota_claim": clean(outcome.quota_claim, 64),
        "quota_overage": clean(outcome.quota_overage, 32),
        "translation": route.translation,
    }
    row["cost_usd"] = usage_cost(prices(row["provider"], row["upstream_model"]), usage) if prices is not None and usage else None
    return row


class UsageRecorder:
    UNAUTHENTICATED_PER_SECOND = 5  # refusals without a valid key are recorded, but a flood of them is not
    MAX_RETRY_DELAY = 5.0  # a store that is back is written to within seconds (the connection heals on its next use)
    GIVE_UP_AT_SHUTDOWN = 15.0

    def __init__(
        self,
        retention_days: int = 90,
        maxsize: int = 50_000,
        batch: int = 500,
        interval: float = 0.5,
        prices: PriceLookup | None = None,
        tz: tzinfo = datetime.UTC,
    ) -> None:
        self.retention_days = retention_days
        self.prices = prices  # set by the services from the catalog: a cost per event
        self.tz = tz  # the budget windows' time zone, for the per-key window totals
        self._sequence = itertools.count(1)
        self.committed = 0  # sequence number up to which every queued event is stored (or given up): budgets read it
        self.batch_observers: list[Callable[[list[dict[str, Any]]], None]] = []  # the writer thread calls them per batch
        self.batch = batch
        self.interval = interval
        self._wake = threading.Event()
        self.queue = PendingEvents(maxsize, batch, self._wake)
        self.dropped = 0
        self.written = 0
        self.failed_batches = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        self.unauthenticated_skipped = 0
        self._unauthenticated_window = (0, 0)  # (second, events recorded in it)

    # -- request path -------------------------------------------------------------------
    def record(self, ctx: RequestContext, now: float) -> dict[str, Any] | None:
        """Queue the request's event; returns it (with its sequence number `seq`), or None when it is not recorded."""
        if ctx.client.key is None:
            second, count = self._unauthenticated_window
            if int(now) != second:
                if count > self.UNAUTHENTICATED_PER_SECOND:  # at most one line per second of flood
                    log.warning(
                        "%d requests without a valid Kleis key in one second: %d recorded, the rest counted only (%d so far)",
                        count,
                        self.UNAUTHENTICATED_PER_SECOND,
                        self.unauthenticated_skipped,
                    )
                second, count = int(now), 0
            self._unauthenticated_window = (second, count + 1)
            if count >= self.UNAUTHENTICATED_PER_SECOND:
                self.unauthenticated_skipped += 1
                return None
        row = event_from_context(ctx, now, self.prices)
        row["seq"] = next(self._sequence)
        try:
            self.queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.error("usage queue full: %d events could not be recorded", self.dropped)
            return None
        return row

    # -- mitmproxy hooks ----------------------------------------------------------------
    def running(self) -> None:
        self.start()

    async def done(self) -> None:
        await asyncio.to_thread(self.stop_blocking)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="kleis-usage-writer", daemon=True)
            self._thread.start()

    def stop_blocking(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.unauthenticated_skipped or self.dropped:
            log.warning(
                "usage: %d events written, %d lost, %d refusals without a valid key counted but not recorded",
                self.written,
                self.dropped,
                self.unauthenticated_skipped,
            )

    # -- writer thread --------------------------------------------------------------------
    def _write(self, rows: list[dict[str, Any]]) -> None:
        """Insert a batch. A store that is unavailable keeps the rows and is retried with backoff (nothing is lost
        to an outage); a row the store refuses (bad data) is set apart so it cannot hold back the others."""
        delay = 0.5
        waited_stopping = 0.0  # seconds spent retrying since shutdown began: given up after GIVE_UP_AT_SHUTDOWN
        while True:
            try:
                self.written += usage_store.insert_events(rows, self.tz)
                if delay > 0.5:
                    log.warning("usage events are written again (%d written so far)", self.written)
                used: dict[int, float] = {}
                for row in rows:
                    if row["key_id"] is not None:
                        used[row["key_id"]] = max(used.get(row["key_id"], 0.0), row["created_at"])
                key_store.touch_last_used(used)
                return
            except DATA_ERRORS as exc:
                if len(rows) > 1:
                    for row in rows:  # find the bad row; each of the others is written (or waits out an outage)
                        self._write([row])
                    return
                self.dropped += 1
                log.error("usage event %s could not be stored and is dropped: %s", rows[0].get("request_id"), exc)
                return
            except Exception as exc:
                self.failed_batches += 1
                reason = describe_store_error(exc)
                if self._stop.is_set() and waited_stopping >= self.GIVE_UP_AT_SHUTDOWN:
                    log.error("giving up on %d usage events at shutdown: they cannot be written: %s", len(rows), reason)
                    self.dropped += len(rows)
                    return
                log.warning(
                    "writing %d usage events failed: %s; they and newer events are kept in memory (%d waiting, at most %d) "
                    "and written once the store takes writes again (next try in %.1fs)",
                    len(rows),
                    reason,
                    len(rows) + self.queue.qsize(),
                    self.queue.maxsize,
                    delay,
                )
                time.sleep(delay)
                if self._stop.is_set():
                    waited_stopping += delay
                delay = min(delay * 2, self.MAX_RETRY_DELAY)

    def _write_batch(self, rows: list[dict[str, Any]]) -> None:
        for observer in self.batch_observers:  # metrics: counted here, off the event loop, once per batch
            try:
                observer(rows)
            except Exception:
                log.exception("usage batch observer failed")
        self._write(rows)
        self.committed = max(self.committed, max(int(row.get("seq") or 0) for row in rows))

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self._wake.wait(self.interval)  # one wake-up per interval, not one per request
                self._wake.clear()
            while not self.queue.empty():
                self._write_batch(self.queue.take(self.batch))
            self._maybe_purge()
            if stopping and self.queue.empty():
                return

    def _maybe_purge(self) -> None:
        now = time.time()
        if now - self._last_purge < 86400:
            return
        self._last_purge = now
        try:
            removed = usage_store.purge_older_than(self.retention_days)
            if removed:
                log.info("deleted %d usage events older than %d days", removed, self.retention_days)
            budget_store.purge_before(now - max(self.retention_days, 62) * 86400)  # a month window lives at most 31 days
        except Exception:
            log.exception("usage retention cleanup failed")
