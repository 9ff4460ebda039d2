"""Claude's subscription quota from Anthropic's unified rate-limit headers, sent on every answer (JSON and streams).

`anthropic-ratelimit-unified-<window>-utilization` (a fraction), `-<window>-reset` (epoch seconds) and
`-<window>-status` for each window (`5h`, `7d`, and per-model weekly windows such as `7d_oi` on some plans), plus the
overall `-status`, `-reset`, `-representative-claim` (the window the request counted against), `-overage-status`,
`-overage-reset` and `-fallback-percentage`. Names as Claude Code reads them (src/services/claudeAiLimits.ts) and as
claude-relay-service and CLIProxyAPI parse them (2026).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.numbers import number_or_none
from providers.quota import QuotaReading, QuotaWindow

PREFIX = "anthropic-ratelimit-unified-"
# A window is a length (5h, 7d) with an optional model part (7d_oi, 7d_opus); `overage-status` is not a window.
_WINDOW_FIELD = re.compile(r"^anthropic-ratelimit-unified-(\d+[a-z](?:_[0-9a-z]+)?)-(utilization|reset|status)$")


def _epoch(value: str | None) -> float | None:
    number = number_or_none(value)
    return None if number is None else (number / 1000 if number > 1e11 else number)  # tolerate milliseconds


def read_unified(headers: Mapping[str, str], now: float) -> QuotaReading | None:
    """The reading in an answer's headers (looked up case-insensitively), or None when it carries none."""
    if PREFIX + "status" not in headers and PREFIX + "5h-utilization" not in headers:
        return None  # the cheap check: answers without the headers end here
    fields: dict[str, dict[str, str]] = {}
    for name, value in headers.items():
        match = _WINDOW_FIELD.match(name.lower())
        if match:
            fields.setdefault(match.group(1), {})[match.group(2)] = value
    windows = tuple(
        QuotaWindow(
            name=window,
            used=number_or_none(parts.get("utilization")),
            resets_at=_epoch(parts.get("reset")),
            status=parts.get("status", ""),
            seen_at=now,
        )
        for window, parts in sorted(fields.items())
    )
    return QuotaReading(
        windows=windows,
        seen_at=now,
        status=headers.get(PREFIX + "status", ""),
        resets_at=_epoch(headers.get(PREFIX + "reset")),
        claim=headers.get(PREFIX + "representative-claim", ""),
        overage=headers.get(PREFIX + "overage-status", ""),
        overage_resets_at=_epoch(headers.get(PREFIX + "overage-reset")),
        fallback=number_or_none(headers.get(PREFIX + "fallback-percentage")),
    )
