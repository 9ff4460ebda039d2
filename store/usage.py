"""Usage events: idempotent batch inserts, totals by key / account / model, recent requests, retention."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import tzinfo
from typing import Any, cast

import peewee

from core.display import account_name, key_label
from store import budgets
from store.models import Account, ApiKey, UsageEvent, database

# peewee's own wrapper: a driver's errors raised as peewee's (IntegrityError, OperationalError, …) whatever the database,
# for SQL run on a raw cursor (sqlite3 and psycopg2 raise their own classes otherwise).
AS_PEEWEE_ERRORS: AbstractContextManager[None] = vars(peewee)["__exception_wrapper__"]

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
GROUPINGS: dict[str, peewee.Field] = {
    "key": UsageEvent.key_id,
    "account": UsageEvent.account_id,
    "model": UsageEvent.model,
    "provider": UsageEvent.provider,
    "translation": UsageEvent.translation,
}


COLUMNS = (
    "request_id",
    "created_at",
    "key_id",
    "account_id",
    "provider",
    "protocol",
    "model",
    "upstream_model",
    "status",
    "error_type",
    "streamed",
    "incomplete",
    "ttfb_ms",
    "latency_ms",
    *TOKEN_FIELDS,
    "cost_usd",
    "raw_usage",
    "quota_claim",
    "quota_overage",
    "translation",
)


DEFAULTS: dict[str, Any] = {
    "created_at": None,
    "provider": "",
    "protocol": "",
    "model": "",
    "upstream_model": "",
    "status": 0,
    "error_type": "",
    "streamed": False,
    "incomplete": False,
    **{field: 0 for field in TOKEN_FIELDS},
    "cost_usd": None,
    "raw_usage": "",
    "quota_claim": "",
    "quota_overage": "",
    "translation": "",
}


def insert_events(rows: list[dict[str, Any]], tz: tzinfo = datetime.UTC) -> int:
    """Insert events, ignoring request ids already stored (a retried batch writes nothing twice), and add the new
    ones to their keys' window totals (store.budgets) in the same transaction.

    One prepared statement run by the driver's executemany: building SQL row by row in Python would hold the GIL
    the proxy's event loop needs. Returns how many rows were new.
    """
    db = database.obj
    placeholders = ", ".join([db.param] * len(COLUMNS))
    sql = f"INSERT INTO usage_event ({', '.join(COLUMNS)}) VALUES ({placeholders}) ON CONFLICT (request_id) DO NOTHING"
    now = time.time()
    rows = [{**row, "created_at": row.get("created_at", now)} for row in rows] if any("created_at" not in r for r in rows) else rows
    values = [tuple(row.get(column, DEFAULTS.get(column)) for column in COLUMNS) for row in rows]
    with database.atomic(), AS_PEEWEE_ERRORS:
        stored = _already_stored([row["request_id"] for row in rows])
        new = list({row["request_id"]: row for row in rows if row["request_id"] not in stored}.values())
        cursor = db.cursor()
        cursor.executemany(sql, values)
        budgets.add_events(new, tz)
    return len(new)


def _already_stored(request_ids: list[str]) -> set[str]:
    """The request ids of a batch that are in the store already (a batch retried after its commit was lost)."""
    query = UsageEvent.select(UsageEvent.request_id).where(UsageEvent.request_id.in_(request_ids))
    return {row.request_id for row in query}


def parse_since(text: str) -> float:
    """'24h', '7d', '30m' or '90s' → a unix time that long ago."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    if len(value) < 2 or value[-1] not in units or not value[:-1].replace(".", "", 1).isdigit():
        raise ValueError(f"expected a duration like 24h, 7d or 30m, got {text!r}")
    return time.time() - float(value[:-1]) * units[value[-1]]


def key_labels(ids: Iterable[int | None]) -> dict[int, str]:
    """Display labels of the keys with these ids (deleted ones are absent)."""
    wanted = [i for i in ids if i is not None]
    return {k.id: key_label(k.name, k.public_id) for k in ApiKey.select().where(ApiKey.id.in_(wanted))} if wanted else {}


def account_labels(ids: Iterable[int | None]) -> dict[int, str]:
    """Display labels of the accounts with these ids (removed ones are absent)."""
    wanted = [i for i in ids if i is not None]
    rows = Account.select().where(Account.id.in_(wanted)) if wanted else []
    return {a.id: f"{a.provider}: {account_name(a.label, a.email, a.identity)}" for a in rows}


def _labels(by: str, ids: Iterable[Any]) -> dict[Any, str]:
    if by == "key":
        return dict(key_labels(ids))
    if by == "account":
        return dict(account_labels(ids))
    return {}


FILTERS = ("key_id", "account_id", "model", "provider", "translation")


def totals(since: float, by: str | None = None, until: float | None = None, **filters: Any) -> list[dict[str, Any]]:
    """Requests, errors and token sums since a time, overall or grouped by key / account / model / provider;
    `filters` (key_id, account_id, model, provider) narrow the events counted."""
    fields = [
        peewee.fn.COUNT(UsageEvent.id).alias("requests"),
        peewee.fn.SUM(peewee.Case(None, [(UsageEvent.status >= 400, 1)], 0)).alias("errors"),
        *[peewee.fn.COALESCE(peewee.fn.SUM(getattr(UsageEvent, f)), 0).alias(f) for f in TOKEN_FIELDS],
        peewee.fn.SUM(UsageEvent.cost_usd).alias("cost_usd"),
        peewee.fn.SUM(
            peewee.Case(None, [(UsageEvent.cost_usd.is_null() & (UsageEvent.input_tokens + UsageEvent.output_tokens > 0), 1)], 0)
        ).alias("unpriced"),
    ]
    where = UsageEvent.created_at >= since
    if until is not None:
        where &= UsageEvent.created_at < until
    for name, value in filters.items():
        if value is not None:
            where &= getattr(UsageEvent, name) == value
    if by is None:
        row = cast(dict[str, Any], UsageEvent.select(*fields).where(where).dicts().get())
        return [{"group": "all", **_numbers(row)}]
    column = GROUPINGS[by]
    rows = cast(
        list[dict[str, Any]],
        list(
            UsageEvent.select(column.alias("group"), *fields)
            .where(where)
            .group_by(column)
            .order_by(peewee.fn.COUNT(UsageEvent.id).desc())
            .dicts()
        ),
    )
    labels = _labels(by, [r["group"] for r in rows])
    return [
        {"group": r["group"], "label": labels.get(r["group"], str(r["group"]) if r["group"] is not None else "(none)"), **_numbers(r)}
        for r in rows
    ]


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """Counts as ints; `cost_usd` None when no event counted had a price (never a made-up 0), and `unpriced` the
    requests with tokens but no price (so a partial sum says it is one)."""
    numbers: dict[str, Any] = {k: int(row.get(k) or 0) for k in ("requests", "errors", *TOKEN_FIELDS, "unpriced")}
    cost = row.get("cost_usd")
    numbers["cost_usd"] = None if cost is None else round(float(cost), 6)
    return numbers


def recent(limit: int = 50, **filters: Any) -> list[dict[str, Any]]:
    query = UsageEvent.select().order_by(UsageEvent.created_at.desc(), UsageEvent.id.desc()).limit(limit)
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(UsageEvent, name) == value)
    return [event_to_dict(e) for e in query]


def event_to_dict(event: UsageEvent) -> dict[str, Any]:
    return {
        "request_id": event.request_id,
        "created_at": event.created_at,
        "key_id": event.key_id,
        "account_id": event.account_id,
        "provider": event.provider,
        "protocol": event.protocol,
        "model": event.model,
        "upstream_model": event.upstream_model,
        "status": event.status,
        "error_type": event.error_type,
        "streamed": event.streamed,
        "incomplete": event.incomplete,
        "ttfb_ms": event.ttfb_ms,
        "latency_ms": event.latency_ms,
        **{f: getattr(event, f) for f in TOKEN_FIELDS},
        "quota_claim": event.quota_claim,
        "quota_overage": event.quota_overage,
        "translation": event.translation,
        "cost_usd": event.cost_usd,
    }


def purge_older_than(days: float) -> int:
    removed: int = UsageEvent.delete().where(UsageEvent.created_at < time.time() - days * 86400).execute()
    return removed


TIMELINE_STEP = 900  # seconds: every time zone's offset is a multiple of 15 minutes, so local hours and days are unions of these


def timeline(since: float, until: float, by: str) -> list[dict[str, Any]]:
    """Requests, tokens (input, cache, output) and cost per quarter hour and provider or model, for the charts:
    summed by the database, a few hundred rows whatever the number of events."""
    column = GROUPINGS[by]
    scaled = UsageEvent.created_at / peewee.SQL(
        str(TIMELINE_STEP)
    )  # a literal: SELECT and GROUP BY carry one expression whatever the driver
    step = peewee.fn.FLOOR(scaled) if isinstance(database.obj, peewee.PostgresqlDatabase) else peewee.Cast(scaled, "INTEGER")
    tokens = UsageEvent.input_tokens + UsageEvent.cache_read_tokens + UsageEvent.cache_write_tokens + UsageEvent.output_tokens
    query = (
        UsageEvent.select(
            step.alias("step"),
            column.alias("group"),
            peewee.fn.COUNT(UsageEvent.id).alias("requests"),
            peewee.fn.COALESCE(peewee.fn.SUM(tokens), 0).alias("tokens"),
            peewee.fn.SUM(UsageEvent.cost_usd).alias("cost_usd"),
        )
        .where((UsageEvent.created_at >= since) & (UsageEvent.created_at < until))
        .group_by(step, column)
    )
    return [
        {
            "at": int(r["step"]) * TIMELINE_STEP,
            "group": r["group"] or "(none)",
            "requests": int(r["requests"]),
            "tokens": int(r["tokens"] or 0),
            "cost_usd": float(r["cost_usd"] or 0.0),
        }
        for r in cast(list[dict[str, Any]], list(query.dicts()))
    ]
