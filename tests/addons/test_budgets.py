"""Per-key budgets: calendar windows, the store's window totals, the tracker's arithmetic and rollover, the addon under
mitmproxy's test context, and the real proxy refusing in each protocol's shape.
Here the parts that need no socket; through listeners: tests/e2e/test_budgets.py."""

from __future__ import annotations

import asyncio
import datetime
import time
from zoneinfo import ZoneInfo

import pytest
from mitmproxy import hooks
from mitmproxy.test import taddons, tflow

from addons.kleis import Kleis
from addons.services import Parts, build_services
from core.client_errors import Refusal
from core.protocol import Protocol
from core.windows import BudgetWindow, bounds
from engine.budgets import BudgetTracker
from engine.usage_recorder import UsageRecorder
from store import budgets as budget_store
from store import keys
from store import usage as usage_store
from store.budgets import Totals
from store.keys import KeyRecord
from store.models import KeyUsage
from tests.fakes.loopback_provider import LoopbackProvider

UTC = datetime.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz: datetime.tzinfo = UTC) -> float:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def budgeted(key_id: int = 1, tokens: int | None = None, cost: float | None = None, window: str = "day") -> KeyRecord:
    return KeyRecord(key_id, "kl_abcdefgh", "k", "0" * 64, (), (), None, None, token_budget=tokens, cost_budget=cost, budget_window=window)


# -- calendar windows ------------------------------------------------------------------------------


def test_windows_are_calendar_day_monday_week_and_month_in_the_time_zone() -> None:
    moment = at("2026-03-18 15:30")  # a Wednesday
    assert bounds("day", moment, UTC) == (at("2026-03-18 00:00"), at("2026-03-19 00:00"))
    assert bounds("week", moment, UTC) == (at("2026-03-16 00:00"), at("2026-03-23 00:00"))
    assert bounds("month", moment, UTC) == (at("2026-03-01 00:00"), at("2026-04-01 00:00"))
    assert bounds("month", at("2026-12-31 23:59"), UTC)[1] == at("2027-01-01 00:00")
    # Berlin moves its clocks on 29 March 2026: that day has 23 hours, and the window starts at local midnight
    start, end = bounds("day", at("2026-03-29 12:00", BERLIN), BERLIN)
    assert (start, end - start) == (at("2026-03-29 00:00", BERLIN), 23 * 3600)
    assert bounds("day", at("2026-03-18 23:30", UTC), BERLIN)[0] == at("2026-03-19 00:00", BERLIN)  # already tomorrow there
    kathmandu = ZoneInfo("Asia/Kathmandu")  # UTC+5:45
    assert bounds("day", at("2026-03-18 12:00", kathmandu), kathmandu)[0] == at("2026-03-18 00:00", kathmandu)


# -- the store's window totals --------------------------------------------------------------------------


def event(request_id: str, created_at: float, key_id: int | None = 1, cost: float | None = 0.01) -> dict:
    return {
        "request_id": request_id,
        "created_at": created_at,
        "key_id": key_id,
        "input_tokens": 10,
        "cache_read_tokens": 5,
        "cache_write_tokens": 3,
        "output_tokens": 2,
        "reasoning_tokens": 1,  # inside output: not counted twice
        "cost_usd": cost,
    }


def test_the_writer_adds_new_events_to_every_window_once(store) -> None:
    day = bounds("day", at("2026-03-18 12:00"), UTC)[0]
    rows = [event("r1", day + 10), event("r2", day + 20, cost=None), event("r3", day + 30, key_id=None), event("r4", day - 5)]
    assert usage_store.insert_events(rows, UTC) == 4
    assert usage_store.insert_events(rows[:2] + [event("r5", day + 40)], UTC) == 1  # a retried batch adds only what is new
    totals = budget_store.current_totals({1: (BudgetWindow.DAY, day)})
    assert totals == {1: Totals(requests=3, tokens=60, cost_usd=pytest.approx(0.02))}
    week = bounds("week", day, UTC)[0]
    assert budget_store.current_totals({1: (BudgetWindow.WEEK, week)})[1].requests == 4  # r4 is yesterday, the same week
    assert KeyUsage.select().where(KeyUsage.key_id.is_null()).count() == 0
    assert budget_store.purge_before(day) == 3  # yesterday's day, this week's and this month's rows (the writer keeps 62 days)
    assert budget_store.current_totals({1: (BudgetWindow.DAY, day)})[1].requests == 3


# -- the tracker -------------------------------------------------------------------------------------------


class Writer:
    committed = 0


def tracker_for(*records: KeyRecord, tz: datetime.tzinfo = UTC) -> tuple[BudgetTracker, Writer]:
    writer = Writer()
    return BudgetTracker(lambda: records, lambda: writer.committed, tz), writer


def finished(seq: int, created_at: float, tokens: int = 100, cost: float | None = 0.5) -> dict:
    return {"seq": seq, "created_at": created_at, "input_tokens": tokens, "output_tokens": 0, "cost_usd": cost}


def test_a_key_is_refused_once_its_own_and_the_stores_usage_reach_the_budget() -> None:
    key = budgeted(tokens=300)
    tracker, writer = tracker_for(key)
    now = at("2026-03-18 12:00")
    tracker.check(key, now)
    tracker.observe(key, finished(1, now))  # this process's request: counted at once
    tracker.observe(key, finished(2, now))
    tracker.check(key, now)
    writer.committed = 2  # both stored; another process's 100 tokens are in the store too
    tracker.apply(writer.committed, tracker.wanted(now), {1: Totals(3, 300, 1.5)}, now)
    assert tracker.used(key, now) == Totals(3, 300, 1.5)  # the store holds this process's two: not counted twice
    with pytest.raises(Refusal) as refused:
        tracker.check(key, now)
    assert refused.value.status == 429 and refused.value.code == "key_budget_exceeded"
    assert "300 of its 300 tokens" in refused.value.message
    assert refused.value.headers == {"retry-after": str(12 * 3600), "x-should-retry": "false"}


def test_a_cost_budget_counts_list_prices_and_requests_without_a_price_count_nothing() -> None:
    key = budgeted(cost=1.0, window="month")
    tracker, _ = tracker_for(key)
    now = at("2026-03-18 12:00")
    tracker.observe(key, finished(1, now, cost=None))
    tracker.observe(key, finished(2, now, cost=0.6))
    tracker.check(key, now)
    tracker.observe(key, finished(3, now, cost=0.4))
    with pytest.raises(Refusal) as refused:
        tracker.check(key, now)
    assert "$1.00 of its $1.00 (list prices)" in refused.value.message
    assert int(refused.value.headers["retry-after"]) == at("2026-04-01 00:00") - now


def test_the_window_rolls_over_at_local_midnight_and_the_last_minute_may_be_retried() -> None:
    key = budgeted(tokens=100)
    tracker, writer = tracker_for(key, tz=BERLIN)
    evening = at("2026-03-18 23:59:30", BERLIN)
    tracker.observe(key, finished(1, evening))
    with pytest.raises(Refusal) as refused:
        tracker.check(key, evening)
    assert refused.value.headers == {"retry-after": "30"}  # under a minute: the SDKs may wait and retry
    tracker.check(key, at("2026-03-19 00:00:00", BERLIN))  # a new day: yesterday's use is not counted
    writer.committed = 1
    tracker.apply(1, tracker.wanted(evening), {1: Totals(1, 100, 0.5)}, evening)  # a reconcile from before midnight
    tracker.check(key, at("2026-03-19 00:00:01", BERLIN))  # its totals are of the old window


def test_keys_without_a_budget_cost_nothing_and_need_no_query(store) -> None:
    plain = budgeted()
    tracker, _ = tracker_for(plain)
    tracker.observe(plain, finished(1, time.time()))
    tracker.check(plain, time.time())
    assert tracker.read_store(time.time()) == (0, {}, {})


# -- the addon under mitmproxy's test context ---------------------------------------------------------------


def test_the_tracker_addon_reconciles_in_the_background_and_stops(store) -> None:
    row, _ = keys.create_key("budgeted", token_budget=50, budget_window="day")
    record = KeyRecord.from_row(row)
    now = time.time()
    usage_store.insert_events([event("r1", now, key_id=row.id)], UTC)  # 20 tokens another process stored
    tracker = BudgetTracker(lambda: [record], lambda: 0, UTC, interval=0.02)

    async def run() -> Totals:
        with taddons.context(tracker) as tctx:
            await tctx.master.addons.trigger_event(hooks.RunningHook())
            deadline = time.time() + 5
            while tracker.reconciled_at == 0 and time.time() < deadline:
                await asyncio.sleep(0.01)
            used = tracker.used(record, time.time())
            await tctx.master.addons.trigger_event(hooks.DoneHook())
            return used

    assert asyncio.run(run()) == Totals(1, 20, 0.01)
    assert tracker.reconcile_seconds < 1.0


def test_the_kleis_addon_refuses_a_key_over_budget_before_anything_goes_upstream(store, config) -> None:
    row, key = keys.create_key("spent", token_budget=10, budget_window="week")
    usage_store.insert_events([event("r1", time.time(), key_id=row.id)], UTC)
    provider = LoopbackProvider(config, dict.fromkeys(Protocol, "http://127.0.0.1:9"), token_url="http://127.0.0.1:9/token")

    async def run() -> tflow.http.HTTPFlow:
        with taddons.context() as tctx:
            recorder = UsageRecorder()
            services = build_services(store, config, {"loop": provider}, Parts(usage=recorder, budgets=True), lambda: tctx.master)
            assert services.budgets is not None
            await services.budgets.reconcile_once()
            flow = tflow.tflow()
            flow.request.path, flow.request.method = "/v1/messages", "POST"
            flow.request.headers["x-api-key"] = key
            await Kleis(services).requestheaders(flow)
            await services.http.aclose()
            return flow

    flow = asyncio.run(run())
    assert flow.response is not None and flow.response.status_code == 429
    body = flow.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "20 of its 10 tokens" in body["error"]["message"] and key not in flow.response.text
    assert flow.response.headers["x-should-retry"] == "false" and int(flow.response.headers["retry-after"]) > 60
    assert flow.request.host == "address"  # tflow's own: the flow was never pointed upstream


# -- through the proxy ---------------------------------------------------------------------------------------


# -- the admin API, the keys page and the CLI -----------------------------------------------------------------


# -- the schema and PostgreSQL -------------------------------------------------------------------------------------


def test_schema_8_adds_cost_budgets_and_window_totals_to_a_version_4_store(tmp_path) -> None:
    import peewee

    from store import migrations

    db = peewee.SqliteDatabase(str(tmp_path / "v4.db"))
    assert migrations.upgrade(db, target=4) == 4
    db.execute_sql(
        "INSERT INTO usage_event (request_id, created_at, provider, protocol, model, upstream_model, status, error_type, streamed,"
        " incomplete, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, raw_usage)"
        " VALUES ('r1', 1, 'claude', 'messages', 'm', 'm', 200, '', 0, 0, 10, 5, 0, 0, 0, '')"
    )
    db.execute_sql(
        "INSERT INTO api_key (public_id, key_hash, name, providers, models, created_at, rate_limit)"
        " VALUES ('kl_abcdefgh', ?, 'k', '[]', '[]', 1, 5)",
        ("0" * 64,),
    )
    assert migrations.upgrade(db) == migrations.CURRENT_VERSION == 9
    assert db.execute_sql("SELECT cost_usd FROM usage_event").fetchall() == [(None,)]  # old events: no price known, not 0
    key = db.execute_sql("SELECT rate_limit, token_budget, cost_budget, budget_window FROM api_key").fetchone()
    assert key == (5, None, None, "month")
    assert "key_usage" in db.get_tables() and db.execute_sql("SELECT COUNT(*) FROM key_usage").fetchone() == (0,)
    db.close()
