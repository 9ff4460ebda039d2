"""Account health: what an upstream's answer does to an account (cooldowns), as a decision; engine.health applies it.

Rules (`decide`):
- 429 with a provider reset time → cooling until then, capped at KLEIS_COOLDOWN_MAX; after the cooldown one
  request tests the account (half-open, `order`): a success makes it active, another 429 cools it again, and
  meanwhile the other requests go to the other accounts first.
- 429 without a reset time → a short cooldown (transient throttling).
- 529 / 5xx → a short cooldown.
- request-scoped problems (fast-mode credits, client version) → nothing: the account is fine.
- 401 → no cooldown: the token is marked stale and the next request refreshes it (providers.lifecycle);
  but a 401 to a token issued within the last minute means the account is refused: cooled for 5 minutes.
"""

from __future__ import annotations

import dataclasses

from core.display import fmt_clock
from core.enums import AccountStatus, SignalKind
from providers.base import Signal

TRANSIENT_COOLDOWN = 30.0  # 429 without a reset signal
SERVER_COOLDOWN = 10.0  # 529 / 5xx
REJECTED_COOLDOWN = 300.0  # a freshly issued token refused: the account itself is refused


@dataclasses.dataclass(frozen=True)
class Decision:
    status: AccountStatus
    reason: str
    cooldown_until: float | None = None


def decide(signal: Signal, now: float, cooldown_max: float) -> Decision | None:
    """The account state a signal calls for, or None to leave the account as it is."""
    if not signal.account_wide or signal.kind in (SignalKind.OK, SignalKind.AUTH, SignalKind.REQUEST, SignalKind.VERSION):
        return None
    if signal.kind == SignalKind.RATE_LIMIT:
        if signal.reset_at is not None and signal.reset_at > now:
            until = min(signal.reset_at, now + cooldown_max)
            capped = " (capped; retried then)" if until < signal.reset_at else ""
            return Decision(
                AccountStatus.COOLING,
                f"{signal.label or 'rate limited'}; provider reset at {fmt_clock(signal.reset_at)}{capped}",
                until,
            )
        return Decision(
            AccountStatus.COOLING, f"{signal.label or 'rate limited'} without a reset time: short cooldown", now + TRANSIENT_COOLDOWN
        )
    if signal.kind in (SignalKind.OVERLOADED, SignalKind.SERVER):
        return Decision(AccountStatus.COOLING, signal.label or "provider error", now + SERVER_COOLDOWN)
    if signal.kind == SignalKind.AUTH_REJECTED:
        return Decision(AccountStatus.COOLING, signal.label or "the provider refuses this account", now + REJECTED_COOLDOWN)
    return None
