"""Copilot's premium-request quota from GitHub's `GET /copilot_internal/user`, read when the Copilot token is renewed.

The answer's `quota_snapshots.premium_interactions` has `entitlement`, `remaining`, `percent_remaining` and
`unlimited`; `quota_reset_date` (YYYY-MM-DD, UTC) is when the month's allowance starts again (as VS Code Copilot Chat
and copilot-api read it, 2026). Kleis asks at each token renewal (about every 25 minutes), never per request.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import httpx

from core.config import Config
from core.jsonshape import json_or_none, mapping
from providers.copilot.tokens import github_headers
from providers.quota import QuotaReading, QuotaWindow

USER_PATH = "/copilot_internal/user"
PREMIUM = "premium_interactions"


def reset_time(value: Any) -> float | None:
    """`2026-12-01` (or a full ISO time) as epoch seconds, UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)).timestamp()


def read_copilot_user(body: Any, now: float) -> QuotaReading | None:
    """The premium-request window of a /copilot_internal/user answer; None when it has no quota snapshot."""
    premium = mapping(mapping(mapping(body).get("quota_snapshots")).get(PREMIUM))
    if not premium:
        return None
    percent = premium.get("percent_remaining")
    if premium.get("unlimited") is True:
        used: float | None = 0.0
    elif isinstance(percent, (int, float)) and not isinstance(percent, bool) and math.isfinite(percent):
        used = max(0.0, min(1.0, 1.0 - float(percent) / 100))
    else:
        entitlement, remaining = premium.get("entitlement"), premium.get("remaining")
        used = None
        if (
            isinstance(entitlement, (int, float))
            and isinstance(remaining, (int, float))
            and 0 < entitlement < math.inf
            and math.isfinite(remaining)
        ):
            used = max(0.0, min(1.0, 1.0 - remaining / entitlement))
    window = QuotaWindow(name="premium", used=used, resets_at=reset_time(mapping(body).get("quota_reset_date")), seen_at=now)
    return QuotaReading(windows=(window,), seen_at=now)


async def fetch(config: Config, github_token: str, http: httpx.AsyncClient, now: float) -> QuotaReading | None:
    """Ask GitHub once; None when it does not answer with a quota (the caller keeps the last reading)."""
    response = await http.get(config.github_api_base + USER_PATH, headers=github_headers(config, github_token))
    if response.status_code != 200:
        return None
    return read_copilot_user(json_or_none(response.content), now)
