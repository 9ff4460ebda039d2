"""The usage page, and the usage summaries the JSON API shares: totals per key, account and model, latest requests."""

from __future__ import annotations

import time
from datetime import tzinfo
from typing import Any

from flask import Blueprint, current_app, render_template, request

from admin import charts
from core.display import COST_BASIS, fmt_cost, key_label
from core.exceptions import InvalidInput
from core.windows import BudgetWindow, bounds
from store import budgets as budget_store
from store import usage as usage_store
from store.models import ApiKey

bp = Blueprint("usage", __name__, url_prefix="/admin")

WINDOWS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"}
GROUPS = ("key", "account", "model")
STACKS = ("provider", "model")
RECENT_MAX = 500


def admin_tz() -> tzinfo:
    """KLEIS_TIMEZONE: the days of the usage page and its charts (and of the budgets)."""
    tz: tzinfo = current_app.config["KLEIS_CONFIG"].tz
    return tz


def window_start(window: str, now: float | None = None) -> float:
    now = time.time() if now is None else now
    if window == "today":
        return bounds(BudgetWindow.DAY, now, admin_tz())[0]
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


CHARTS = (("requests", "Requests"), ("tokens", "Tokens"), ("cost_usd", f"Cost, USD ({COST_BASIS})"))


def usage_charts(window: str, stack: str, now: float | None = None) -> dict[str, Any]:
    """The window's requests, tokens and cost over time (hourly for today, daily for 7 / 30 days), stacked."""
    now = time.time() if now is None else now
    starts, labels, end = charts.buckets(window, now, admin_tz())
    line = charts.timeline(usage_store.timeline(starts[0], end, stack), starts, labels)
    step = "hour" if window == "today" else "day"
    svgs = [
        (
            title,
            charts.stacked_bars(
                f"chart-{measure.removesuffix('_usd')}", f"{title} per {step}, {WINDOWS[window].lower()}, by {stack}", line, measure
            ),
        )
        for measure, title in CHARTS
    ]
    legend = [(group, charts.colour(line.groups, group)) for group in line.groups]
    return {"svgs": svgs, "legend": legend, "stack": stack}


def budget_use(rows: list[ApiKey], now: float | None = None) -> dict[int, dict[str, Any]]:
    """What each budgeted key of `rows` has spent in its current window, and when that window resets (one query)."""
    now = time.time() if now is None else now
    budgeted = [r for r in rows if r.token_budget is not None or r.cost_budget is not None]
    windows = {r.id: (BudgetWindow(r.budget_window or "month"), bounds(r.budget_window or "month", now, admin_tz())) for r in budgeted}
    used = budget_store.current_totals({key_id: (kind, span[0]) for key_id, (kind, span) in windows.items()})
    use = {}
    for key_id, (kind, (starts, resets)) in windows.items():
        totals = used.get(key_id, budget_store.Totals())
        use[key_id] = {"window": kind.value, "starts_at": starts, "resets_at": resets, "tokens": totals.tokens, "cost_usd": totals.cost_usd}
    return use


def budget_rows(now: float | None = None) -> list[dict[str, Any]]:
    """Each budgeted key's use in its current window, with a spend-versus-budget bar per budget."""
    rows = list(ApiKey.select().where(ApiKey.revoked_at.is_null()))
    use = budget_use(rows, now)
    listed = []
    for row in (r for r in rows if r.id in use):
        spent, bars = use[row.id], []
        if row.token_budget is not None:
            bars.append(charts.budget_bar(f"budget-{row.id}-tokens", "tokens", spent["tokens"], row.token_budget, lambda v: f"{v:,.0f}"))
        if row.cost_budget is not None:
            bars.append(charts.budget_bar(f"budget-{row.id}-cost", "cost", spent["cost_usd"], row.cost_budget, lambda v: fmt_cost(v)))
        listed.append(
            {
                "id": row.id,
                "label": key_label(row.name, row.public_id),
                "window": spent["window"],
                "resets": spent["resets_at"],
                "bars": bars,
            }
        )
    return listed


@bp.get("/usage")
def page() -> str:
    window = request.args.get("window", "today")
    if window not in WINDOWS:
        window = "today"
    stack = request.args.get("stack", "provider")
    if stack not in STACKS:
        stack = "provider"
    return render_template(
        "usage.html",
        windows=WINDOWS,
        window=window,
        overview=overview(),
        summary=window_summary(window),
        recent=recent(50),
        charts=usage_charts(window, stack),
        stacks=STACKS,
        budgets=budget_rows(),
        cost_basis=COST_BASIS,
    )
