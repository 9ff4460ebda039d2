"""Quota as operators see it: `accounts list` / `accounts show` (text and --json), the admin page's bars and the
admin API's fields, with a stale reading shown as stale.
Here the parts in this process; the CLI's, in a process of its own: tests/e2e/test_quota_display.py."""

from __future__ import annotations

import json
import time

import pytest

from providers import quota
from store.accounts import TokenSet, upsert_account
from store.db import Store
from store.models import AccountQuota
from tests.support.accounts import seed_quotas
from tests.support.admin import Api, text


def test_the_admin_api_and_page_show_the_windows(store: Store, api: Api, admin) -> None:
    busy, old = seed_quotas(store)
    listed = {a["id"]: a for a in api.get("/admin/api/accounts").json["accounts"]}
    assert listed[busy]["quota"]["state"] == "saving" and listed[busy]["quota"]["claim"] == "five_hour"
    assert listed[busy]["quota"]["windows"][0] | {"resets_in": None} == {
        "window": "5h",
        "used": 0.97,
        "resets_at": pytest.approx(time.time() + 7200, abs=5),
        "resets_in": None,
        "state": "saving",
        "status": "allowed",
        "seen_at": pytest.approx(time.time(), abs=5),
        "minutes": None,
    }
    assert listed[old]["quota"]["windows"][0]["state"] == "stale"
    assert api.get(f"/admin/api/accounts/{busy}").json["account"]["quota"]["state"] == "saving"
    page = text(admin.get("/admin/accounts"))
    assert 'data-window="5h" data-state="saving"' in page and 'aria-valuenow="97"' in page
    assert 'data-window="5h" data-state="stale"' in page and "stale" in page


def seed_bad_reading(store: Store) -> int:
    """A reading stored before its numbers were checked: `Infinity`/`NaN` resets and shares, a number as text, and
    400 per-model windows (one real answer was stored whole: 46 KB)."""
    now = time.time()
    row, _ = upsert_account("claude", "bad", TokenSet("a3", "r3", now + 3600), store.cipher, email="bad@example.test")
    windows = [
        {"name": "5h", "used": float("nan"), "resets_at": float("inf"), "status": "allowed", "seen_at": now},
        {"name": "7d", "used": 0.4, "resets_at": 1e300, "status": "allowed", "seen_at": now},
        {"name": "7d_oi", "used": "0.2", "resets_at": "soon", "status": 7, "seen_at": now, "minutes": float("inf")},
    ] + [{"name": f"7d_w{n:04d}", "used": 0.01, "resets_at": now + 86400, "status": "allowed", "seen_at": now} for n in range(400)]
    reading = {"windows": windows, "seen_at": now, "status": "allowed", "resets_at": float("-inf"), "fallback": float("nan")}
    AccountQuota.insert(account_id=row.id, reading=json.dumps(reading), seen_at=now).execute()
    assert "Infinity" in AccountQuota.get(AccountQuota.account_id == row.id).reading
    return row.id


def assert_clean(view: dict) -> None:
    assert len(view["windows"]) == quota.MAX_WINDOWS
    five, seven = view["windows"][0], view["windows"][1]
    assert (five["window"], five["used"], five["resets_at"]) == ("5h", None, None)
    assert (seven["window"], seven["used"], seven["resets_at"]) == ("7d", 0.4, None)
    assert all(w["used"] is None or 0 <= w["used"] <= 1 for w in view["windows"])


def test_a_bad_stored_reading_never_breaks_the_admin(store: Store, api: Api, admin) -> None:
    bad = seed_bad_reading(store)
    busy, _ = seed_quotas(store)
    for page in ("/admin/", "/admin/accounts", "/admin/usage"):
        answer = admin.get(page, follow_redirects=True)
        assert answer.status_code == 200 and "Something went wrong" not in text(answer), page
    assert text(admin.get("/admin/accounts")).count('data-window="7d_w') == quota.MAX_WINDOWS - 3
    listed = api.get("/admin/api/accounts")
    assert listed.status_code == 200 and "Infinity" not in listed.get_data(as_text=True) and "NaN" not in listed.get_data(as_text=True)
    accounts = {a["id"]: a for a in json.loads(listed.get_data(as_text=True))["accounts"]}
    assert_clean(accounts[bad]["quota"])
    assert accounts[busy]["quota"]["state"] == "saving"  # the good readings beside it are untouched
    one = api.get(f"/admin/api/accounts/{bad}")
    assert one.status_code == 200
    assert_clean(one.json["account"]["quota"])


def test_bad_stored_readings_are_cleaned_once(store: Store) -> None:
    bad = seed_bad_reading(store)
    busy, old = seed_quotas(store)
    before = {row.account_id: row.reading for row in AccountQuota.select()}
    assert quota.clean_stored(time.time()) == [bad]
    after = {row.account_id: row.reading for row in AccountQuota.select()}
    assert after[busy] == before[busy] and after[old] == before[old]
    stored = json.loads(after[bad])
    assert len(stored["windows"]) == quota.MAX_WINDOWS and "Infinity" not in after[bad] and "NaN" not in after[bad]
    assert len(after[bad]) < 3000 < len(before[bad])
    assert quota.clean_stored(time.time()) == []  # nothing left to clean
