"""Usage accounting: one durable event per request, normalised tokens, off the hot path.
Here the parts that need no socket; through listeners: tests/e2e/test_usage.py."""

from __future__ import annotations

import logging
import time

import pytest

from engine.usage_recorder import UsageRecorder
from store import usage as usage_store
from store.models import UsageEvent


def test_rewriting_the_same_request_id_is_idempotent(store) -> None:
    row = {
        "request_id": "req_same",
        "created_at": time.time(),
        "key_id": None,
        "account_id": None,
        "provider": "loop",
        "protocol": "messages",
        "model": "m",
        "upstream_model": "m",
        "status": 200,
        "error_type": "",
        "streamed": False,
        "incomplete": False,
        "ttfb_ms": 1.0,
        "latency_ms": 2.0,
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "raw_usage": "",
    }
    assert usage_store.insert_events([row]) == 1
    assert usage_store.insert_events([row, {**row, "request_id": "req_other"}]) == 1
    assert UsageEvent.select().count() == 2


def test_shutdown_flushes_and_a_full_queue_never_blocks(store) -> None:
    from engine.context import begin

    recorder = UsageRecorder(interval=60, maxsize=5)
    recorder.start()
    started = time.time()
    for _ in range(8):
        recorder.record(keyed(begin("POST", "/v1/messages")), time.time())
    assert time.time() - started < 0.5 and recorder.dropped >= 3  # never waits for room
    recorder.stop_blocking()
    assert UsageEvent.select().count() == 8 - recorder.dropped and recorder.written == 8 - recorder.dropped


def keyed(ctx):
    from store.keys import KeyRecord

    ctx.client.key = KeyRecord(1, "kl_test0000", "t", "0" * 64, (), (), None, None)
    return ctx


def test_unauthenticated_refusals_are_recorded_at_a_bounded_rate(store, caplog) -> None:
    from engine.context import begin

    recorder = UsageRecorder(interval=0.05)
    now = time.time()
    for _ in range(50):  # a flood of requests without a valid key in one second
        recorder.record(begin("POST", "/v1/messages"), now)
    assert recorder.queue.qsize() == UsageRecorder.UNAUTHENTICATED_PER_SECOND and recorder.unauthenticated_skipped == 45
    recorder.record(keyed(begin("POST", "/v1/messages")), now)
    assert recorder.queue.qsize() == UsageRecorder.UNAUTHENTICATED_PER_SECOND + 1  # keyed requests are never skipped
    with caplog.at_level(logging.WARNING, logger="engine.usage_recorder"):
        recorder.record(begin("POST", "/v1/messages"), now + 1)  # the next second: the flood is reported once
        recorder.stop_blocking()
    lines = [r.getMessage() for r in caplog.records]
    assert any("50 requests without a valid Kleis key in one second" in line for line in lines)
    assert any("45 refusals without a valid key counted" in line for line in lines)


def test_retention_deletes_events_older_than_the_setting(store) -> None:
    from engine.context import begin

    recorder = UsageRecorder(retention_days=30)
    old, recent = keyed(begin("POST", "/v1/messages")), keyed(begin("POST", "/v1/messages"))
    old.client.started = time.time() - 31 * 86400
    usage_store.insert_events([usage_recorder_row(old), usage_recorder_row(recent)])
    recorder._maybe_purge()
    assert [e.request_id for e in UsageEvent.select()] == [recent.request_id]
    another_old = keyed(begin("POST", "/v1/messages"))
    another_old.client.started = time.time() - 40 * 86400
    usage_store.insert_events([usage_recorder_row(another_old)])
    recorder._maybe_purge()  # at most once a day: this one waits for tomorrow's pass
    assert UsageEvent.select().count() == 2
    recorder._last_purge -= 86400
    recorder._maybe_purge()
    assert [e.request_id for e in UsageEvent.select()] == [recent.request_id]


def usage_recorder_row(ctx):
    from engine.usage_recorder import event_from_context

    return event_from_context(ctx, time.time())


def test_one_unstorable_row_does_not_stall_the_others(store, monkeypatch) -> None:
    from engine import usage_recorder
    from engine.context import begin

    ctx = keyed(begin("POST", "/v1/messages"))
    ctx.client.model = "claude-\ud800-broken\x00"  # a lone surrogate and a NUL from a client
    row = usage_recorder.event_from_context(ctx, time.time())
    assert usage_store.insert_events([row]) == 1 and "\x00" not in UsageEvent.get(UsageEvent.request_id == row["request_id"]).model
    recorder = UsageRecorder(interval=0.05)
    real = usage_store.insert_events

    def poisoned(rows, *args):
        if any(r["request_id"] == "req_poison" for r in rows):
            raise ValueError("cannot store this row")
        return real(rows, *args)

    monkeypatch.setattr(usage_recorder.usage_store, "insert_events", poisoned)
    monkeypatch.setattr(usage_recorder.time, "sleep", lambda seconds: None)
    good = [dict(row, request_id=f"req_good_{i}") for i in range(3)]
    recorder._write(good + [dict(row, request_id="req_poison")])
    assert recorder.dropped == 1 and recorder.written == 3
    assert UsageEvent.select().where(UsageEvent.request_id.startswith("req_good_")).count() == 3


def test_a_store_outage_loses_no_usage_event(store, monkeypatch) -> None:
    import peewee

    from engine import usage_recorder
    from engine.context import begin

    real = usage_store.insert_events
    failures = iter([peewee.OperationalError("database is locked")] * 6)

    def flaky(rows, *args):
        error = next(failures, None)
        if error is not None:
            raise error
        return real(rows, *args)

    sleeps: list[float] = []
    monkeypatch.setattr(usage_recorder.usage_store, "insert_events", flaky)
    monkeypatch.setattr(usage_recorder.time, "sleep", sleeps.append)
    recorder = UsageRecorder()
    rows = [usage_recorder.event_from_context(keyed(begin("POST", "/v1/messages")), time.time()) for _ in range(40)]
    recorder._write(rows)
    assert recorder.dropped == 0 and recorder.written == 40 and UsageEvent.select().count() == 40
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]  # backed off (at most 5 s: written within seconds of the store), the whole batch kept


def test_a_full_disk_is_named_and_events_wait_in_memory_until_writes_succeed(store, caplog) -> None:
    """SQLite reports a full disk (here: its page limit reached) inside a transaction it has already rolled back."""
    from engine import usage_recorder
    from engine.context import begin
    from store.models import database

    full = [True]
    real = usage_store.insert_events

    def on_a_full_disk(rows, *args):
        db = database.obj  # the writer thread's own connection
        pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
        db.execute_sql(f"PRAGMA max_page_count = {pages if full[0] else 1_000_000_000}")
        return real(rows, *args)

    recorder = UsageRecorder(interval=0.05)
    recorder.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(usage_recorder.usage_store, "insert_events", on_a_full_disk)
            big = "x" * 4000  # rows that need new pages
            for _ in range(20):
                ctx = keyed(begin("POST", "/v1/messages"))
                ctx.client.model = big[:200]
                recorder.record(ctx, time.time())
                recorder.queue._items[-1]["raw_usage"] = big
            deadline = time.time() + 10
            while recorder.failed_batches < 2 and time.time() < deadline:
                time.sleep(0.02)
            assert recorder.failed_batches >= 2 and UsageEvent.select().count() == 0
            full[0] = False
            deadline = time.time() + 10
            while recorder.written < 20 and time.time() < deadline:
                time.sleep(0.02)
    finally:
        recorder.stop_blocking()
    assert UsageEvent.select().count() == 20 and recorder.dropped == 0
    failures = [r.getMessage() for r in caplog.records if "usage events failed" in r.getMessage()]
    assert failures and all("the disk is full (database or disk is full)" in message for message in failures), failures
    assert "kept in memory (20 waiting, at most 50000)" in failures[0]
    assert not any("cannot rollback" in r.getMessage() for r in caplog.records)
