"""Calendar windows in a time zone: the day, the week (from Monday) and the month a moment falls in, as unix times."""

from __future__ import annotations

import datetime
import enum
from datetime import tzinfo


class BudgetWindow(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


WINDOWS = tuple(BudgetWindow)


def parse_window(value: str) -> BudgetWindow:
    try:
        return BudgetWindow(value.strip().lower())
    except ValueError:
        raise ValueError(f"budget window must be one of {', '.join(WINDOWS)}, got {value!r}") from None


def _local_midnight(day: datetime.date, tz: tzinfo) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=tz)


def bounds(window: BudgetWindow | str, at: float, tz: tzinfo) -> tuple[float, float]:
    """[start, end) of the calendar window holding the unix time `at`, in `tz` (DST-aware: a day may be 23 or 25 hours)."""
    window = BudgetWindow(window)
    today = datetime.datetime.fromtimestamp(at, tz).date()
    if window is BudgetWindow.DAY:
        first, following = today, today + datetime.timedelta(days=1)
    elif window is BudgetWindow.WEEK:
        first = today - datetime.timedelta(days=today.weekday())
        following = first + datetime.timedelta(days=7)
    else:
        first = today.replace(day=1)
        following = (first + datetime.timedelta(days=32)).replace(day=1)
    return _local_midnight(first, tz).timestamp(), _local_midnight(following, tz).timestamp()


def local_days(first: float, count: int, tz: tzinfo) -> list[float]:
    """Unix times of `count` consecutive local midnights from the day holding `first`."""
    day = datetime.datetime.fromtimestamp(first, tz).date()
    return [_local_midnight(day + datetime.timedelta(days=i), tz).timestamp() for i in range(count)]
