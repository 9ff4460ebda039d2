"""The usage page, and the usage summaries the JSON API shares: totals per key, account and model, latest requests."""

from __future__ import annotations

import datetime
import time
from typing import Any

from flask import Blueprint, render_template, request

from core.exceptions import InvalidInput
from store import usage as usage_store

bp = Blueprint("usage", __name__, url_prefix="/admin")

WINDOWS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"}
GROUPS = ("key", "account", "model")
RECENT_MAX = 500


def window_start(window: str, now: float | None = None) -> float:
    now = time.time() if now is None else now
    if window == "today":
        local = datetime.datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        return local.timestamp()
    if window in ("7d", "30d"):
        return now - int(window[:-1]) * 86400
    raise InvalidInput(f"unknown window {window!r} (choose from {', '.join(WINDOWS)})")


def overview() -> dict[str, dict[str, Any]]:
    """One total per window (requests, errors, tokens)."""
    return {window: {**usage_store.totals(window_start(window))[0], "since": window_start(window)} for window in WINDOWS}


def parse_filters(args: Any) -> dict[str, Any]:
    """?key_id=&account_id=&model=&provider= from a request's arguments (ids checked)."""
    filters: dict[str, Any] = {}
    for name in usage_store.FILTERS:
        value = args.get(name)
        if value is None or value == "":
            continue
        if name.endswith("_id"):
            if not value.isdigit():
                raise InvalidInput(f"{name}: expected a number, got {value!r}")
            filters[name] = int(value)
        else:
            filters[name] = value
    return filters


def window_summary(window: str, **filters: Any) -> dict[str, Any]:
    since = window_start(window)
    return {
        "window": window,
        "since": since,
        "total": usage_store.totals(since, **filters)[0],
        **{f"by_{group}": usage_store.totals(since, group, **filters) for group in GROUPS},
    }


def since_summary(text: str, by: str | None, **filters: Any) -> dict[str, Any]:
    """A custom period (`24h`, `7d`, `30m`), optionally grouped by key / account / model / provider."""
    try:
        since = usage_store.parse_since(text)
    except ValueError as exc:
        raise InvalidInput(f"since: {exc}") from None
    if by is not None and by not in usage_store.GROUPINGS:
        raise InvalidInput(f"by: unknown grouping {by!r} (choose from {', '.join(usage_store.GROUPINGS)})")
    return {"since": since, "by": by, "totals": usage_store.totals(since, by, **filters)}


def recent(limit: int, **filters: Any) -> list[dict[str, Any]]:
    """The latest requests, with the key's and account's names beside their ids."""
    events = usage_store.recent(max(0, min(limit, RECENT_MAX)), **filters)
    key_ids = {e["key_id"] for e in events if e["key_id"] is not None}
    account_ids = {e["account_id"] for e in events if e["account_id"] is not None}
    keys = usage_store.key_labels(key_ids)
    accounts = usage_store.account_labels(account_ids)
    for event in events:
        event["key_label"] = keys.get(event["key_id"], "" if event["key_id"] is None else f"key {event['key_id']} (deleted)")
        event["account_label"] = accounts.get(
            event["account_id"], "" if event["account_id"] is None else f"account {event['account_id']} (removed)"
        )
    return events


def parse_limit(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise InvalidInput(f"recent: expected a number of requests, got {value!r}")
    return min(int(value), RECENT_MAX)


@bp.get("/usage")
def page() -> str:
    window = request.args.get("window", "today")
    if window not in WINDOWS:
        window = "today"
    return render_template(
        "usage.html",
        windows=WINDOWS,
        window=window,
        overview=overview(),
        summary=window_summary(window),
        recent=recent(50),
    )
