"""The usage recorder (engine.usage_recorder): the request path only queues; the writer thread started by `running`
writes batches, and `done` flushes what is left."""

from __future__ import annotations

import asyncio
import time

from mitmproxy import hooks
from mitmproxy.test import taddons

from engine.context import begin
from engine.usage_recorder import UsageRecorder, event_from_context
from store import keys
from store.keys import KeyRecord
from store.models import ApiKey, UsageEvent


def finished(key: KeyRecord | None, status: int = 200, model: str = "loop/m") -> object:
    ctx = begin("POST", "/v1/messages")
    ctx.client.key, ctx.client.model, ctx.outcome.status = key, model, status
    return ctx


def key_record() -> KeyRecord:
    row, _ = keys.create_key("recorded")
    return KeyRecord.from_row(row)


def test_running_writes_batches_and_done_flushes_the_rest(store) -> None:
    key = key_record()
    recorder = UsageRecorder(interval=3600)  # the interval never passes: only a full batch or `done` writes

    async def scenario() -> None:
        with taddons.context(recorder) as tctx:
            await tctx.master.addons.invoke_addon(recorder, hooks.RunningHook())
            for _ in range(3):
                recorder.record(finished(key), time.time())
            assert recorder.queue.qsize() == 3 and UsageEvent.select().count() == 0  # queued, not written per request
            await tctx.master.addons.invoke_addon(recorder, hooks.DoneHook())

    asyncio.run(scenario())
    assert UsageEvent.select().count() == 3 and recorder.written == 3
    assert ApiKey.get_by_id(key.id).last_used_at is not None


def test_a_flood_without_a_key_is_counted_not_recorded(store) -> None:
    recorder = UsageRecorder()
    now = float(int(time.time()))
    for _ in range(50):
        recorder.record(finished(None, status=401), now)
    assert recorder.queue.qsize() == UsageRecorder.UNAUTHENTICATED_PER_SECOND
    assert recorder.unauthenticated_skipped == 50 - UsageRecorder.UNAUTHENTICATED_PER_SECOND


def test_a_row_the_store_refuses_is_dropped_without_holding_back_the_others(store) -> None:
    key = key_record()
    good = event_from_context(finished(key), time.time())
    bad = dict(good, request_id=None)  # NOT NULL: the store refuses this one row
    other = event_from_context(finished(key), time.time())
    recorder = UsageRecorder()
    recorder._write([good, bad, other])
    assert UsageEvent.select().count() == 2 and recorder.dropped == 1
