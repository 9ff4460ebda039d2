"""Subscription quota headers as the real services send them, per account, for the fakes' `answer_headers`."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.fakes.base import Recorded


def claude_unified(
    five_hour: float,
    seven_day: float = 0.1,
    *,
    five_hour_reset: float = 3600,
    seven_day_reset: float = 4 * 86400,
    status: str | None = None,
    claim: str = "five_hour",
    overage: str = "",
    extra: dict[str, float] | None = None,
) -> dict[str, str]:
    """Anthropic's unified rate-limit headers: utilization fractions, resets in seconds from now (epoch on the wire)."""
    now = time.time()
    overall = status or ("rejected" if max(five_hour, seven_day) >= 1 else "allowed_warning" if five_hour >= 0.8 else "allowed")
    headers = {
        "anthropic-ratelimit-unified-status": overall,
        "anthropic-ratelimit-unified-reset": str(int(now + five_hour_reset)),
        "anthropic-ratelimit-unified-5h-utilization": f"{five_hour:.2f}",
        "anthropic-ratelimit-unified-5h-reset": str(int(now + five_hour_reset)),
        "anthropic-ratelimit-unified-5h-status": "rejected" if five_hour >= 1 else "allowed",
        "anthropic-ratelimit-unified-7d-utilization": f"{seven_day:.2f}",
        "anthropic-ratelimit-unified-7d-reset": str(int(now + seven_day_reset)),
        "anthropic-ratelimit-unified-7d-status": "rejected" if seven_day >= 1 else "allowed",
        "anthropic-ratelimit-unified-representative-claim": claim,
        "anthropic-ratelimit-unified-fallback-percentage": "0.5",
    }
    for window, used in (extra or {}).items():
        headers[f"anthropic-ratelimit-unified-{window}-utilization"] = f"{used:.2f}"
        headers[f"anthropic-ratelimit-unified-{window}-reset"] = str(int(now + seven_day_reset))
    if overage:
        headers["anthropic-ratelimit-unified-overage-status"] = overage
    return headers


def codex_usage(
    primary: float, secondary: float = 5.0, *, primary_reset: float = 3600, secondary_reset: float = 5 * 86400
) -> dict[str, str]:
    """The Codex backend's usage headers: used percent (0–100), window minutes, seconds until reset."""
    return {
        "x-codex-primary-used-percent": f"{primary:g}",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-after-seconds": str(int(primary_reset)),
        "x-codex-secondary-used-percent": f"{secondary:g}",
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-after-seconds": str(int(secondary_reset)),
    }


class PerAccount:
    """`fake.answer_headers = PerAccount(key_of)`: each account's current headers, by a key read off the request
    (its bearer token, or the loopback provider's x-loop-account); `grow` adds to a window's use after each answer."""

    def __init__(self, key_of: Callable[[Recorded], str], make: Callable[..., dict[str, str]] = claude_unified) -> None:
        self.key_of = key_of
        self.make = make
        self.used: dict[str, float] = {}
        self.grow = 0.0
        self.served: list[str] = []

    def __call__(self, request: Recorded) -> dict[str, str]:
        key = self.key_of(request)
        self.served.append(key)
        used = self.used.get(key, 0.0)
        self.used[key] = used + self.grow
        return self.make(used)
