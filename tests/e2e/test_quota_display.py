"""Quota as operators see it: `accounts list` / `accounts show` (text and --json), the admin page's bars and the
admin API's fields, with a stale reading shown as stale.
Here the parts that need a listener; the rest: tests/unit/test_quota_display.py."""

from __future__ import annotations

import json
import time

import pytest

from core.config import Config
from providers import quota
from store.db import Store
from tests.support.accounts import seed_quotas
from tests.support.admin import Api, text
from tests.support.cli import run_kleis
from tests.unit.test_quota_display import seed_bad_reading


def test_accounts_list_and_show_print_each_window(store: Store, config: Config) -> None:
    busy, old = seed_quotas(store)
    env = {"KLEIS_SECRET_KEY": config.secret_key}
    listed = run_kleis(config.data_dir, "accounts", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if "busy@example.test" in row)
    assert "5h 97% saving (resets in 1h 59m); 7d 30% ok (resets in 2d 23h)" in line
    assert "5h 99% stale (reset 10m ago)" in next(row for row in listed.stdout.splitlines() if "old@example.test" in row)
    as_json = json.loads(run_kleis(config.data_dir, "accounts", "list", "--json", env=env).stdout)
    shown = {row["id"]: row["quota"] for row in as_json}
    assert shown[busy]["state"] == "saving" and [w["used"] for w in shown[busy]["windows"]] == [0.97, 0.3]
    assert shown[old]["state"] == "ok" and shown[old]["windows"][0]["state"] == "stale"
    one = run_kleis(config.data_dir, "accounts", "show", str(busy), env=env).stdout
    assert "quota: saving" in one and "counted against five_hour, extra usage rejected" in one and "5h 97% saving" in one
    assert (
        json.loads(run_kleis(config.data_dir, "accounts", "show", str(old), "--json", env=env).stdout)["quota"]["windows"][0]["state"]
        == "stale"
    )


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


def test_a_bad_stored_reading_never_breaks_the_cli(store: Store, config: Config) -> None:
    bad = seed_bad_reading(store)
    env = {"KLEIS_SECRET_KEY": config.secret_key}
    listed = run_kleis(config.data_dir, "accounts", "list", env=env)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if "bad@example.test" in row)
    assert "5h ? ok; 7d 40% ok" in line
    as_json = run_kleis(config.data_dir, "accounts", "list", "--json", env=env)
    assert as_json.returncode == 0 and "Infinity" not in as_json.stdout and "NaN" not in as_json.stdout
    assert_clean(json.loads(as_json.stdout)[0]["quota"])
    for args in (("accounts", "show", str(bad)), ("accounts", "show", str(bad), "--json")):
        shown = run_kleis(config.data_dir, *args, env=env)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr and "NaN" not in shown.stdout, shown.stderr
