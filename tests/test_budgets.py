"""Per-key budgets: calendar windows, the store's window totals, the tracker's arithmetic and rollover, the addon under
mitmproxy's test context, and the real proxy refusing in each protocol's shape."""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from zoneinfo import ZoneInfo

import httpx
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
from providers.pricing import Prices
from store import budgets as budget_store
from store import keys
from store import usage as usage_store
from store.budgets import Totals
from store.keys import KeyRecord
from store.models import KeyUsage
from tests.fakes.loopback_provider import LoopbackProvider
from tests.support.live import start_kleis
from tests.support.waiting import wait_until

UTC = datetime.UTC
BERLIN = ZoneInfo("Europe/Berlin")
MESSAGES = {"model": "loop/claude-b", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/gpt-b", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "loop/gpt-b", "input": "hi"}
MESSAGE_TOKENS = 12 + 100 + 20 + 7  # the fake Anthropic's usage: input, cache read, cache write, output
SONNET = Prices(3, 15, 0.3, 3.75)


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


@pytest.fixture
def live(store, config, fake_oauth, fake_anthropic, fake_openai):
    recorder = UsageRecorder(interval=0.05, prices=lambda provider, model: SONNET)
    running = start_kleis(store, config, fake_oauth, fake_anthropic, fake_openai, parts=Parts(usage=recorder, budgets=True))
    running.add_account()
    yield running
    running.proxy.stop()


def follower_sees(live, **fields) -> None:
    def applied() -> bool:
        record = next(r for r in live.proxy.services.follower.keys.values() if r.id == live.key_id)
        return all(getattr(record, name) == value for name, value in fields.items())

    wait_until(applied)


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [("/v1/messages", MESSAGES, "anthropic"), ("/v1/chat/completions", CHAT, "openai"), ("/v1/responses", RESPONSES, "openai")],
)
def test_a_token_budget_refuses_in_the_callers_shape_until_the_window_resets(live, path, body, shape) -> None:
    keys.set_limits(live.key_id, token_budget=1, budget_window="day")
    follower_sees(live, token_budget=1)
    upstream = live.anthropic if shape == "anthropic" else live.openai
    with httpx.Client(base_url=live.url, headers=live.headers(), timeout=10) as client:
        assert client.post(path, json=body).status_code == 200  # under budget when it starts: admitted, then over
        refused = client.post(path, json=body)
        assert refused.status_code == 429
        expected = math.ceil(bounds("day", time.time(), UTC)[1] - time.time())
        assert abs(int(refused.headers["retry-after"]) - expected) <= 5
        assert refused.headers["x-should-retry"] == "false" or expected <= 60
        error = refused.json()["error"]
        if shape == "anthropic":
            assert refused.json()["type"] == "error" and error["type"] == "rate_limit_error"
        else:
            assert error["type"] == "rate_limit_error" and error["code"] == "key_budget_exceeded"
        assert "tokens for this day" in error["message"] and live.key not in refused.text
        assert len(upstream.received(path)) == 1  # the refused request never went upstream
        keys.set_limits(live.key_id, token_budget=0)  # 0 removes the budget, within a second
        wait_until(lambda: client.post(path, json=body).status_code == 200)


def test_a_cost_budget_counts_the_list_price_of_each_request(live) -> None:
    per_request = (12 * 3 + 100 * 0.3 + 20 * 3.75 + 7 * 15) / 1e6  # the fake Anthropic's usage at Sonnet's prices
    keys.set_limits(live.key_id, cost_budget=per_request * 2.5, budget_window="month")
    follower_sees(live, cost_budget=per_request * 2.5)
    with httpx.Client(base_url=live.url, headers=live.headers(), timeout=10) as client:
        statuses = [client.post("/v1/messages", json=MESSAGES).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = client.post("/v1/messages", json=MESSAGES).json()["error"]["message"]
        assert f"${per_request * 3:,.2f} of its ${per_request * 2.5:,.2f}" in refused
    month = {live.key_id: (BudgetWindow.MONTH, bounds("month", time.time(), UTC)[0])}
    wait_until(lambda: budget_store.current_totals(month).get(live.key_id, Totals()).requests == 5)  # refusals count as requests
    final = budget_store.current_totals(month)[live.key_id]
    assert final.tokens == 3 * MESSAGE_TOKENS and final.cost_usd == pytest.approx(per_request * 3)


# -- the admin API, the keys page and the CLI -----------------------------------------------------------------


def test_budgets_through_the_api_and_the_keys_page(api, admin) -> None:
    from tests.support.admin import submit

    created = api.post("/admin/api/keys", json={"name": "ci", "token_budget": 5000, "cost_budget": "12.50", "budget_window": "week"})
    assert created.status_code == 201
    key = created.json
    assert (key["token_budget"], key["cost_budget"], key["budget_window"]) == (5000, 12.5, "week")
    changed = api.post(f"/admin/api/keys/{key['id']}/limits", json={"cost_budget": 0, "budget_window": "day"}).json["key"]
    assert (changed["token_budget"], changed["cost_budget"], changed["budget_window"]) == (5000, None, "day")
    for bad in ({"budget_window": "year"}, {"cost_budget": -1}, {"token_budget": 1.5}, {"cost_budget": "lots"}):
        refused = api.post(f"/admin/api/keys/{key['id']}/limits", json=bad)
        assert refused.status_code == 400 and next(iter(bad)) in refused.json["error"]["message"]
    form = {"rate_limit": "", "concurrency_limit": "2", "token_budget": "900", "cost_budget": "3", "budget_window": "month"}
    assert submit(admin, f"/admin/keys/{key['id']}/limits", form, page="/admin/keys").status_code == 303
    listed = next(k for k in api.get("/admin/api/keys").json["keys"] if k["id"] == key["id"])
    assert (listed["concurrency_limit"], listed["token_budget"], listed["cost_budget"], listed["budget_window"]) == (2, 900, 3.0, "month")
    assert submit(admin, f"/admin/keys/{key['id']}/limits", {"rate_limit": "7"}, page="/admin/keys").status_code == 303
    kept = next(k for k in api.get("/admin/api/keys").json["keys"] if k["id"] == key["id"])
    assert (kept["rate_limit"], kept["concurrency_limit"], kept["token_budget"]) == (7, 2, 900)  # a field not sent stays
    usage_store.insert_events([event("r1", time.time(), key_id=key["id"])], UTC)
    spent = next(k for k in api.get("/admin/api/keys").json["keys"] if k["id"] == key["id"])["budget_used"]
    assert (spent["window"], spent["tokens"], spent["cost_usd"]) == ("month", 20, 0.01)
    assert spent["resets_at"] == bounds("month", time.time(), UTC)[1]
    usage = api.get("/admin/api/usage?window=today").json
    assert usage["cost_basis"] == "list-price equivalent" and usage["windows"]["today"]["total"]["cost_usd"] == 0.01


def test_cli_sets_and_shows_budgets(kleis_cli) -> None:
    import json

    created = kleis_cli(
        "keys", "create", "--name", "ci", "--token-budget", "1000", "--cost-budget", "2.5", "--budget-window", "day", "--json"
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert (key["token_budget"], key["cost_budget"], key["budget_window"]) == (1000, 2.5, "day")
    assert "1,000 tokens and $2.50 a day" in kleis_cli("keys", "list").stdout
    changed = kleis_cli("keys", "limit", key["public_id"], "--token-budget", "0")
    assert changed.returncode == 0 and "budget $2.50 a day" in changed.stdout
    assert kleis_cli("keys", "limit", key["public_id"], "--budget-window", "year").returncode == 2
    usage = kleis_cli("usage", "--json")
    assert json.loads(usage.stdout)["cost_basis"] == "list-price equivalent" and "COST" in kleis_cli("usage").stdout


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


def test_window_totals_charts_and_cost_sums_on_postgresql(postgres_server, config) -> None:
    from store.db import open_store

    store = open_store(config.replace(database_url=postgres_server.new_database()))
    try:
        row, _ = keys.create_key("pg", token_budget=100)
        day = bounds("day", time.time(), UTC)[0]
        events = [event(f"r{i}", day + 60 + i * 900, key_id=row.id, cost=0.5 if i else None) for i in range(4)]
        for item in events:
            item.update(provider="claude", model="claude-sonnet-4-5", status=200)
        assert usage_store.insert_events(events, UTC) == 4 and usage_store.insert_events(events, UTC) == 0
        assert budget_store.current_totals({row.id: (BudgetWindow.DAY, day)}) == {row.id: Totals(4, 80, 1.5)}
        (total,) = usage_store.totals(day)
        assert (total["cost_usd"], total["unpriced"]) == (1.5, 1)
        steps = usage_store.timeline(day, day + 86400, "provider")
        assert sorted((s["at"] - day, s["requests"]) for s in steps) == [(0, 1), (900, 1), (1800, 1), (2700, 1)]
    finally:
        store.close()
