"""Accounts' quota readings in the store: written in batches off the request path, read by every process and the admin."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from store.models import AccountQuota, database


def save(readings: Mapping[int, tuple[dict[str, Any], float]]) -> None:
    """Upsert `account id -> (reading as a dict, seen_at)`; a row already holding a newer reading is left as it is."""
    with database.atomic():
        for account_id, (reading, seen_at) in readings.items():
            (
                AccountQuota.insert(account_id=account_id, reading=json.dumps(reading), seen_at=seen_at)
                .on_conflict(
                    conflict_target=[AccountQuota.account_id],
                    update={AccountQuota.reading: json.dumps(reading), AccountQuota.seen_at: seen_at},
                    where=AccountQuota.seen_at < seen_at,
                )
                .execute()
            )


def load(since: float = 0.0) -> dict[int, dict[str, Any]]:
    """Readings seen after `since` (all by default), by account id."""
    rows = AccountQuota.select().where(AccountQuota.seen_at > since)
    return {row.account_id: json.loads(row.reading or "{}") for row in rows}
