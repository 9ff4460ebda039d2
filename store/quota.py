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
    """Readings seen after `since` (all by default), by account id; a row that is not JSON reads as an empty one."""
    rows = AccountQuota.select().where(AccountQuota.seen_at > since)
    return {row.account_id: _decoded(row.reading) for row in rows}


def _decoded(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def replace(readings: Mapping[int, dict[str, Any]]) -> None:
    """Overwrite stored readings as they are (cleaning a bad one), keeping their seen_at."""
    with database.atomic():
        for account_id, reading in readings.items():
            AccountQuota.update(reading=json.dumps(reading, allow_nan=False)).where(AccountQuota.account_id == account_id).execute()
