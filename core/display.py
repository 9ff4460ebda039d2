"""How Kleis writes times, durations and names for people, the same in the CLI and the admin."""

from __future__ import annotations

import time


def fmt_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def fmt_clock(epoch: float) -> str:
    """A moment to the second, for logs and reasons (`2026-12-01 11:05:03`, local time)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def fmt_in(epoch: float | None, now: float | None = None) -> str:
    """'in 3h 5m' / '12m ago' relative to now."""
    if epoch is None:
        return "-"
    now = time.time() if now is None else now
    delta = epoch - now
    text = fmt_duration(abs(delta))
    return f"in {text}" if delta >= 0 else f"{text} ago"


def fmt_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    return f"{hours // 24}d {hours % 24}h"


def account_name(label: str | None, email: str | None, identity: str) -> str:
    """What an account is called: the operator's label, else its email, else the provider's id for it."""
    return label or email or identity


def key_label(name: str, public_id: str) -> str:
    """A client key as people see it: its name and public id (never the key)."""
    return f"{name} ({public_id}…)"


COST_BASIS = "list-price equivalent"  # subscription traffic is not billed per token: what the tokens would cost at list prices


def fmt_cost(usd: float | None, unpriced: int = 0) -> str:
    """`$1.2345`; `-` when no price was known; a trailing `+` when some requests had no price (a lower bound)."""
    if usd is None:
        return "-"
    text = f"${usd:,.2f}" if usd >= 1 else f"${usd:,.4f}"
    return text + ("+" if unpriced else "")
