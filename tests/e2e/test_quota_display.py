"""Quota as operators see it: `accounts list` / `accounts show` (text and --json), the admin page's bars and the
admin API's fields, with a stale reading shown as stale.
Here the CLI's, in a process of its own; the rest: tests/unit/test_quota_display.py."""

from __future__ import annotations

import json

import pytest

from core.config import Config
from store.db import Store
from tests.support.accounts import seed_quotas
from tests.support.cli import run_kleis
from tests.unit.test_quota_display import assert_clean, seed_bad_reading


@pytest.mark.e2e
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


@pytest.mark.e2e
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
