"""Per-key running totals per calendar window (the key_usage table): added to with the events, read by the budgets.

The usage writer adds each batch's new events to the rows of their key's day, week and month (one upsert per key
and window kind) in the transaction that inserts them, so the totals and the events never disagree. Budgets then
read one row per budgeted key, whatever the number of events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import tzinfo
from typing import Any

from core.windows import WINDOWS, BudgetWindow, bounds
from store.models import KeyUsage, database

TOKEN_PARTS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")  # reasoning is inside output


def budget_tokens(row: Mapping[str, Any]) -> int:
    """The tokens a request counts against a token budget: every input part and the output."""
    return sum(int(row.get(part) or 0) for part in TOKEN_PARTS)


@dataclasses.dataclass
class Totals:
    requests: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def add(self, tokens: int, cost: float | None, requests: int = 1) -> None:
        self.requests += requests
        self.tokens += tokens
        self.cost_usd += cost or 0.0


class WindowCache:
    """The [start, end) of each window kind last asked for: a batch's events mostly share them (no date math per row)."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._bounds: dict[BudgetWindow, tuple[float, float]] = {}

    def start(self, kind: BudgetWindow, at: float) -> float:
        known = self._bounds.get(kind)
        if known is None or not known[0] <= at < known[1]:
            known = self._bounds[kind] = bounds(kind, at, self.tz)
        return known[0]


def sums_by_window(rows: Iterable[Mapping[str, Any]], tz: tzinfo) -> dict[tuple[int, BudgetWindow, float], Totals]:
    """(key id, window kind, window start) → what the rows add; rows without a key count for nobody."""
    windows = WindowCache(tz)
    sums: dict[tuple[int, BudgetWindow, float], Totals] = {}
    for row in rows:
        key_id = row.get("key_id")
        if key_id is None:
            continue
        tokens, cost = budget_tokens(row), row.get("cost_usd")
        for kind in WINDOWS:
            sums.setdefault((int(key_id), kind, windows.start(kind, float(row["created_at"]))), Totals()).add(tokens, cost)
    return sums


UPSERT = (
    "INSERT INTO key_usage (key_id, kind, starts_at, requests, tokens, cost_usd) VALUES ({p}, {p}, {p}, {p}, {p}, {p}) "
    "ON CONFLICT (kind, starts_at, key_id) DO UPDATE SET requests = key_usage.requests + excluded.requests, "
    "tokens = key_usage.tokens + excluded.tokens, cost_usd = key_usage.cost_usd + excluded.cost_usd"
)


def add_events(rows: Iterable[Mapping[str, Any]], tz: tzinfo) -> None:
    """Add new events to their windows' totals (call inside the transaction that inserts them): one prepared upsert
    run by the driver's executemany, like the events' insert (SQL built per row in Python would hold the GIL)."""
    values = [
        (key_id, kind.value, starts_at, totals.requests, totals.tokens, totals.cost_usd)
        for (key_id, kind, starts_at), totals in sums_by_window(rows, tz).items()
    ]
    if values:
        db = database.obj
        db.cursor().executemany(UPSERT.format(p=db.param), values)


def current_totals(wanted: Mapping[int, tuple[BudgetWindow, float]]) -> dict[int, Totals]:
    """Each key's totals in the window given for it (key id → (kind, start)): one indexed query for all of them."""
    if not wanted:
        return {}
    condition = None
    for (kind, starts_at), key_ids in _group(wanted).items():
        clause = (KeyUsage.kind == kind.value) & (KeyUsage.starts_at == starts_at) & KeyUsage.key_id.in_(key_ids)
        condition = clause if condition is None else condition | clause
    found = {}
    for row in KeyUsage.select(KeyUsage.key_id, KeyUsage.requests, KeyUsage.tokens, KeyUsage.cost_usd).where(condition):
        found[row.key_id] = Totals(int(row.requests), int(row.tokens), float(row.cost_usd))
    return found


def _group(wanted: Mapping[int, tuple[BudgetWindow, float]]) -> dict[tuple[BudgetWindow, float], list[int]]:
    groups: dict[tuple[BudgetWindow, float], list[int]] = {}
    for key_id, window in wanted.items():
        groups.setdefault(window, []).append(key_id)
    return groups


def purge_before(cutoff: float) -> int:
    """Drop totals of windows that started before `cutoff` (the daily retention pass)."""
    removed: int = KeyUsage.delete().where(KeyUsage.starts_at < cutoff).execute()
    return removed
