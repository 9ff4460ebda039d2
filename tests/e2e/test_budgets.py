"""Per-key budgets: calendar windows, the store's window totals, the tracker's arithmetic and rollover, the addon under
mitmproxy's test context, and the real proxy refusing in each protocol's shape.
Here the parts that need a listener; the rest: tests/addons/test_budgets.py."""

from __future__ import annotations

import math
import time
from datetime import UTC

import httpx
import pytest

from addons.services import Parts
from core.windows import BudgetWindow, bounds
from engine.usage_recorder import UsageRecorder
from providers.pricing import Prices
from store import budgets as budget_store
from store import keys
from store import usage as usage_store
from store.budgets import Totals
from tests.addons.test_budgets import event
from tests.support.waiting import wait_until

MESSAGES = {"model": "loop/claude-b", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/gpt-b", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "loop/gpt-b", "input": "hi"}
MESSAGE_TOKENS = 12 + 100 + 20 + 7  # the fake Anthropic's usage: input, cache read, cache write, output
SONNET = Prices(3, 15, 0.3, 3.75)


# -- calendar windows ------------------------------------------------------------------------------


# -- the store's window totals --------------------------------------------------------------------------


# -- the tracker -------------------------------------------------------------------------------------------


# -- the addon under mitmproxy's test context ---------------------------------------------------------------


# -- through the proxy ---------------------------------------------------------------------------------------


@pytest.fixture
def live(live_kleis):
    running = live_kleis(Parts(usage=UsageRecorder(interval=0.05, prices=lambda provider, model: SONNET), budgets=True))
    running.add_account()
    return running


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
