"""Subscription quota as Kleis reads it from the providers' answers: windows, how much of each is used, when it resets.

A provider's reader (providers/*/quota.py) turns response headers (or Copilot's user endpoint) into a `QuotaReading`;
the pool uses it to move new conversations away from an account before it runs out (`saving`, `headroom`). A window
whose reset time has passed says nothing about now: it is *stale*, shown as such and ignored by the pool.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

DEFAULT_THRESHOLD = 0.95
MAX_WINDOWS = 12  # windows kept per reading: shortest first (5h, 7d, then per-model weeks by name)
MAX_USED = 1.5  # a used share above this (or below 0) is not a reading: Claude sends fractions, Codex percents / 100
MAX_RESET_AHEAD = 366 * 86400  # a reset further ahead than a year is not one
MAX_NAME = 64


class WindowState(enum.StrEnum):
    OK = "ok"
    SAVING = "saving"  # at or above the threshold: new conversations go elsewhere first
    REJECTED = "rejected"  # the provider says this window refuses requests now
    STALE = "stale"  # the reading is older than the window's reset: unknown now


@dataclasses.dataclass(frozen=True)
class QuotaWindow:
    """One subscription window (`5h`, `7d`, `7d_oi`, `primary`, `premium`…) as last seen."""

    name: str
    used: float | None  # fraction 0–1; None when the provider gave only a status
    resets_at: float | None  # epoch seconds
    status: str = ""  # the provider's own word (allowed, allowed_warning, rejected), when it gives one
    seen_at: float = 0.0
    minutes: int | None = None  # the window's length, when the provider says (Codex)

    def stale(self, now: float) -> bool:
        return self.resets_at is not None and self.resets_at <= now

    def state(self, threshold: float, now: float) -> WindowState:
        if self.stale(now):
            return WindowState.STALE
        if self.status == "rejected":
            return WindowState.REJECTED
        if self.used is not None and self.used >= threshold:
            return WindowState.SAVING
        return WindowState.OK


@dataclasses.dataclass(frozen=True)
class QuotaReading:
    """Everything one answer said about an account's subscription quota."""

    windows: tuple[QuotaWindow, ...] = ()
    seen_at: float = 0.0
    status: str = ""  # the overall verdict (Claude's unified status)
    resets_at: float | None = None  # when the overall verdict changes (Claude's unified reset)
    claim: str = ""  # which window the request counted against (Claude's representative claim)
    overage: str = ""  # extra usage beyond the plan: allowed / rejected (Claude)
    overage_resets_at: float | None = None
    fallback: float | None = None  # Claude's fallback percentage

    def window(self, name: str) -> QuotaWindow | None:
        return next((w for w in self.windows if w.name == name), None)

    def fresh_windows(self, now: float) -> list[QuotaWindow]:
        return [w for w in self.windows if not w.stale(now)]

    def rejected(self, now: float) -> bool:
        """Claude's overall `rejected`, or any fresh window the provider says refuses requests."""
        overall = self.status == "rejected" and (self.resets_at is None or self.resets_at > now)
        return overall or any(w.state(1.0, now) is WindowState.REJECTED for w in self.windows)

    def saving(self, threshold: float, now: float) -> bool:
        return self.rejected(now) or any(w.state(threshold, now) is WindowState.SAVING for w in self.windows)

    def headroom(self, now: float) -> float:
        """What is left of the fullest fresh window (1.0 when no window is known)."""
        used = [w.used for w in self.fresh_windows(now) if w.used is not None]
        return max(0.0, 1.0 - max(used)) if used else 1.0

    def soonest_reset(self, threshold: float, now: float) -> float:
        """When the first of the windows that hold the account back resets (for choosing among saving accounts)."""
        holding = [w.resets_at for w in self.windows if w.resets_at is not None and w.state(threshold, now) is not WindowState.OK]
        if self.status == "rejected" and self.resets_at is not None:
            holding.append(self.resets_at)
        future = [at for at in holding if at > now]
        return min(future) if future else float("inf")


def merge(old: QuotaReading | None, new: QuotaReading) -> QuotaReading:
    """A newer reading replaces the windows it names and keeps the others (Copilot's premium window beside nothing
    else, or an answer that named only some windows); the overall fields are the newest answer's. At most
    MAX_WINDOWS windows are kept, the shortest first."""
    if old is None or old.seen_at > new.seen_at:
        return new if old is None else old
    named = {w.name for w in new.windows}
    kept = tuple(w for w in old.windows if w.name not in named)
    return dataclasses.replace(new, windows=capped(kept + new.windows))


def capped(windows: tuple[QuotaWindow, ...]) -> tuple[QuotaWindow, ...]:
    if len(windows) <= MAX_WINDOWS:
        return windows
    keep = {w.name for w in sorted(windows, key=lambda w: window_key(w.name))[:MAX_WINDOWS]}
    return tuple(w for w in windows if w.name in keep)


# -- every reading passes here: from a provider's answer, and from the store ----------------------------
def _number(value: Any) -> float | None:
    """A finite int or float (never a bool, a string, inf or nan), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _time(value: Any, now: float, problems: list[str], what: str) -> float | None:
    """An epoch time no further ahead than a year (a past one is a stale window, not a bad number)."""
    if value is None:
        return None
    number = _number(value)
    if number is None or number < 0 or number > now + MAX_RESET_AHEAD:
        problems.append(f"{what}={value!r}")
        return None
    return number


def _text(value: Any, limit: int = MAX_NAME) -> str:
    return value[:limit] if isinstance(value, str) else ""


def sanitized(reading: QuotaReading, now: float) -> tuple[QuotaReading, list[str]]:
    """`reading` with every number finite and in range — a used share in [0, MAX_USED], a reset within a year, a
    window length within a year, at most MAX_WINDOWS windows — and the list of what was dropped (empty when nothing
    was). An upstream answer with `…-5h-reset: inf` or 400 windows, or a row stored before this check, ends here."""
    problems: list[str] = []
    windows = []
    for window in reading.windows:
        name = _text(window.name)
        if not name:
            problems.append(f"window name {window.name!r}")
            continue
        used = None if window.used is None else _number(window.used)
        if window.used is not None and (used is None or not 0 <= used <= MAX_USED):
            problems.append(f"{name} used={window.used!r}")
            used = None
        minutes = None if window.minutes is None else _number(window.minutes)
        if window.minutes is not None and (minutes is None or not 0 < minutes <= MAX_RESET_AHEAD / 60):
            problems.append(f"{name} minutes={window.minutes!r}")
            minutes = None
        windows.append(
            QuotaWindow(
                name=name,
                used=used,
                resets_at=_time(window.resets_at, now, problems, f"{name} reset"),
                status=_text(window.status),
                seen_at=_number(window.seen_at) or 0.0,
                minutes=None if minutes is None else int(minutes),
            )
        )
    kept = capped(tuple(windows))
    if len(kept) < len(windows):
        problems.append(f"{len(windows) - len(kept)} windows beyond the first {MAX_WINDOWS}")
    fallback = None if reading.fallback is None else _number(reading.fallback)
    if reading.fallback is not None and (fallback is None or not 0 <= fallback <= 100):
        problems.append(f"fallback={reading.fallback!r}")
        fallback = None
    clean = QuotaReading(
        windows=kept,
        seen_at=_number(reading.seen_at) or 0.0,
        status=_text(reading.status),
        resets_at=_time(reading.resets_at, now, problems, "reset"),
        claim=_text(reading.claim),
        overage=_text(reading.overage),
        overage_resets_at=_time(reading.overage_resets_at, now, problems, "overage reset"),
        fallback=fallback,
    )
    return clean, problems


# -- stored form (JSON, in the store and the API) ------------------------------------------------------
def to_dict(reading: QuotaReading) -> dict[str, Any]:
    return dataclasses.asdict(reading)


def from_dict(data: Any, now: float | None = None) -> QuotaReading:
    """A stored reading, whatever it holds: a field of the wrong type or out of range is dropped (`sanitized`)."""
    return sanitized(raw_from_dict(data), time.time() if now is None else now)[0]


def raw_from_dict(data: Any) -> QuotaReading:
    """A stored reading as it was written (only the known fields taken), before `sanitized` checks its numbers."""
    data = data if isinstance(data, Mapping) else {}
    fields = {f.name for f in dataclasses.fields(QuotaReading)}
    window_fields = {f.name for f in dataclasses.fields(QuotaWindow)}
    raw_windows = data.get("windows")
    windows = tuple(
        QuotaWindow(**{"name": "", "used": None, "resets_at": None} | {k: v for k, v in w.items() if k in window_fields})
        for w in (raw_windows if isinstance(raw_windows, (list, tuple)) else ())
        if isinstance(w, dict)
    )
    return QuotaReading(**{k: v for k, v in data.items() if k in fields and k != "windows"}, windows=windows)


def describe(reading: QuotaReading | None, threshold: float, now: float) -> list[dict[str, Any]]:
    """Each window for people and the API: used share, reset, state (ok / saving / rejected / stale)."""
    if reading is None:
        return []
    return [
        {
            "window": w.name,
            "used": w.used,
            "resets_at": w.resets_at,
            "resets_in": None if w.resets_at is None else round(w.resets_at - now),
            "state": str(w.state(threshold, now)),
            "status": w.status,
            "seen_at": w.seen_at,
            "minutes": w.minutes,
        }
        for w in reading.windows
    ]


WINDOW_RANK = {"5h": 0, "primary": 0, "7d": 1, "secondary": 1, "premium": 2}


def window_key(name: str) -> tuple[int, str]:
    """Shorter windows first (5h before 7d; primary before secondary), then by name."""
    return WINDOW_RANK.get(name, 3), name


def view(reading: QuotaReading | None, threshold: float, now: float) -> dict[str, Any] | None:
    """An account's quota for the CLI's --json, the admin page and its API; None when none was seen yet."""
    if reading is None:
        return None
    return {
        "state": "rejected" if reading.rejected(now) else ("saving" if reading.saving(threshold, now) else "ok"),
        "windows": sorted(describe(reading, threshold, now), key=lambda w: window_key(w["window"])),
        "status": reading.status,
        "claim": reading.claim,
        "overage": reading.overage,
        "seen_at": reading.seen_at,
    }


def summary(quota_view: dict[str, Any] | None, relative: Callable[[float], str]) -> str:
    """One line for `accounts list`: `5h 97% saving (resets in 2h 3m); 7d 20% ok (resets in 4d 1h)`."""
    if quota_view is None:
        return "-"
    parts = []
    for w in quota_view["windows"]:
        used = "?" if w["used"] is None else f"{w['used'] * 100:.0f}%"
        when = "" if w["resets_at"] is None else f" ({'reset' if w['state'] == 'stale' else 'resets'} {relative(w['resets_at'])})"
        parts.append(f"{w['window']} {used} {w['state']}{when}")
    return "; ".join(parts) or quota_view["status"] or "-"


def stored_views(threshold: float, now: float) -> dict[int, dict[str, Any]]:
    """Every account's stored reading as `view` shows it (the CLI and the admin; reads the store)."""
    from store import quota as quota_store

    return {account_id: found for account_id, data in quota_store.load().items() if (found := view(from_dict(data, now), threshold, now))}


def clean_stored(now: float) -> list[int]:
    """Rewrite stored readings that a check added later refuses (an `Infinity` reset, 400 windows…), so that nothing
    reads them again; returns the accounts whose reading was cleaned. Run when the proxy starts (engine.quota)."""
    from store import quota as quota_store

    cleaned = {}
    for account_id, data in quota_store.load().items():
        clean, problems = sanitized(raw_from_dict(data), now)
        if problems:
            cleaned[account_id] = to_dict(clean)
    if cleaned:
        quota_store.replace(cleaned)
    return sorted(cleaned)
