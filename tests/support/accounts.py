"""Accounts for tests: read back from the store as the proxy sees them, built by hand, or seeded with quota readings."""

from __future__ import annotations

import time
from typing import Any

from providers.quota import QuotaReading, QuotaWindow, to_dict
from store import quota as quota_store
from store.accounts import AccountView, TokenSet, load_views, upsert_account
from store.db import Store


def account_view(store: Store, account_id: int) -> AccountView:
    return next(view for view in load_views(store.cipher) if view.id == account_id)


def view(
    id: int,
    provider: str = "claude",
    status: str = "active",
    primary: bool = False,
    created: float = 0.0,
    cooldown: float | None = None,
    **fields: Any,
) -> AccountView:
    """An AccountView built by hand (no store): the fields a test cares about, plain defaults for the rest."""
    values: dict[str, Any] = {
        "id": id,
        "provider": provider,
        "label": "",
        "identity": f"i{id}",
        "email": None,
        "status": status,
        "status_reason": "why",
        "cooldown_until": cooldown,
        "is_primary": primary,
        "access_token": "a",
        "refresh_token": "r",
        "expires_at": None,
        "token_version": 1,
        "metadata": {},
        "created_at": created,
        "last_refresh_at": None,
        "last_refresh_result": "",
    }
    values.update(fields)
    return AccountView(**values)


def seed_quotas(store: Store) -> tuple[int, int]:
    """Two Claude accounts with stored quota readings: one saving (5h at 97 %), one whose only window is stale."""
    now = time.time()
    busy, _ = upsert_account("claude", "busy", TokenSet("a1", "r1", now + 3600), store.cipher, email="busy@example.test")
    old, _ = upsert_account("claude", "old", TokenSet("a2", "r2", now + 3600), store.cipher, email="old@example.test")
    saving = QuotaReading(
        (QuotaWindow("5h", 0.97, now + 7200, "allowed", now), QuotaWindow("7d", 0.3, now + 3 * 86400, "allowed", now)),
        now,
        status="allowed_warning",
        claim="five_hour",
        overage="rejected",
    )
    stale = QuotaReading((QuotaWindow("5h", 0.99, now - 600, "rejected", now - 4000),), now - 4000)
    quota_store.save({busy.id: (to_dict(saving), saving.seen_at), old.id: (to_dict(stale), stale.seen_at)})
    return busy.id, old.id
