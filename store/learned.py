"""Values Kleis learned from traffic (client versions seen, versions a provider required), kept in the setting table.

Each value is a version; a write keeps the higher of the stored and the new one, so several Kleis processes on one
store only ever move a value forward. A change bumps the `learned` counter: every process's follower reloads them.
"""

from __future__ import annotations

from collections.abc import Mapping

from core import versions
from store.db import bump
from store.models import Setting, database

PREFIX = "learned."


def load() -> dict[str, str]:
    """Every learned value, by name (without the prefix)."""
    rows = Setting.select().where(Setting.key.startswith(PREFIX))
    return {row.key[len(PREFIX) :]: row.value for row in rows if versions.is_version(row.value)}


def save(values: Mapping[str, str]) -> dict[str, str]:
    """Store each value that is newer than the stored one; returns those that changed (and bumps `learned` if any)."""
    changed: dict[str, str] = {}
    with database.atomic():
        for name, value in values.items():
            if versions.is_version(value) and len(PREFIX + name) <= 64 and _save_one(PREFIX + name, value):
                changed[name] = value
    if changed:
        bump("learned")
    return changed


def _save_one(key: str, value: str) -> bool:
    row = Setting.get_or_none(Setting.key == key)
    if row is None:
        Setting.insert(key=key, value=value).on_conflict_ignore().execute()
        row = Setting.get_or_none(Setting.key == key)  # this value, or one another process wrote meanwhile
        if row is None or row.value == value:
            return row is not None
    if not versions.newer(value, row.value):
        return False
    return bool(Setting.update(value=value).where((Setting.key == key) & (Setting.value == row.value)).execute())


def forget(name: str | None = None) -> int:
    """Remove one learned value (or all of them); the configured and built-in values apply again."""
    where = Setting.key == PREFIX + name if name else Setting.key.startswith(PREFIX)
    removed = int(Setting.delete().where(where).execute())
    if removed:
        bump("learned")
    return removed
