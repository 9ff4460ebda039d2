"""Quota as operators see it: `accounts list` / `accounts show` (text and --json), the admin page's bars and the
admin API's fields, with a stale reading shown as stale.
Here the parts that need no socket; through listeners: tests/e2e/test_quota_display.py."""

from __future__ import annotations

import json
import time

from providers import quota
from store.accounts import TokenSet, upsert_account
from store.db import Store
from store.models import AccountQuota
from tests.support.accounts import seed_quotas


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
