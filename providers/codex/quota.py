"""Codex's subscription quota from the ChatGPT backend's usage headers, sent on every answer, and from a 429.

`x-codex-primary-used-percent` (0–100), `-window-minutes` (300: the 5-hour window) and `-reset-after-seconds`, the
same for `secondary` (10080: the week), as Codex CLI reads them (openai/codex, codex-rs/core, rate-limit snapshots,
2026). A used-up window answers 429 `usage_limit_reached` with `resets_in_seconds`, which cools the account (providers.
codex.errors) and marks its quota rejected until then. Kleis never polls Codex's usage endpoint: proxies that did
report accounts being flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from core.numbers import number_or_none
from providers.quota import QuotaReading, QuotaWindow

WINDOWS = ("primary", "secondary")


def read_usage_headers(headers: Mapping[str, str], now: float) -> QuotaReading | None:
    """The reading in an answer's headers (looked up case-insensitively), or None when it carries none."""
    windows = []
    for name in WINDOWS:
        used = number_or_none(headers.get(f"x-codex-{name}-used-percent"))
        if used is None:
            continue
        after = number_or_none(headers.get(f"x-codex-{name}-reset-after-seconds"))
        minutes = number_or_none(headers.get(f"x-codex-{name}-window-minutes"))
        windows.append(
            QuotaWindow(
                name=name,
                used=max(0.0, min(1.0, used / 100)) if math.isfinite(used) else used,  # inf and nan: `sanitized` drops them
                resets_at=None if after is None else now + after,
                seen_at=now,
                minutes=None if minutes is None or not math.isfinite(minutes) else int(minutes),
            )
        )
    return QuotaReading(windows=tuple(windows), seen_at=now) if windows else None
