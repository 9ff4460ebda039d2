"""Account health: what an upstream's answer does to an account (cooldowns, re-auth), applied at once.

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

import asyncio
import dataclasses
import logging
import time

from providers.base import Signal
from store import accounts as account_store
from store.accounts import AccountView

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 120.0  # a half-open probe not finished by then no longer holds the others back
TRANSIENT_COOLDOWN = 30.0  # 429 without a reset signal
SERVER_COOLDOWN = 10.0  # 529 / 5xx
REJECTED_COOLDOWN = 300.0  # a freshly issued token refused: the account itself is refused


@dataclasses.dataclass(frozen=True)
class Decision:
    status: str
    reason: str
    cooldown_until: float | None = None


def decide(signal: Signal, now: float, cooldown_max: float) -> Decision | None:
    """The account state a signal calls for, or None to leave the account as it is."""
    if not signal.account_wide or signal.kind in ("ok", "auth", "request", "version"):
        return None
    if signal.kind == "rate_limit":
        if signal.reset_at is not None and signal.reset_at > now:
            until = min(signal.reset_at, now + cooldown_max)
            capped = " (capped; retried then)" if until < signal.reset_at else ""
            return Decision("cooling", f"{signal.label or 'rate limited'}; provider reset at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(signal.reset_at))}{capped}", until)
        return Decision("cooling", f"{signal.label or 'rate limited'} without a reset time: short cooldown", now + TRANSIENT_COOLDOWN)
    if signal.kind in ("overloaded", "server"):
        return Decision("cooling", signal.label or "provider error", now + SERVER_COOLDOWN)
    if signal.kind == "auth_rejected":
        return Decision("cooling", signal.label or "the provider refuses this account", now + REJECTED_COOLDOWN)
    return None


class HealthTracker:
    """Applies decisions to the proxy's in-memory accounts at once and to the store in the background."""

    def __init__(self, cooldown_max: float, follower=None) -> None:  # type: ignore[no-untyped-def]
        self.cooldown_max = cooldown_max
        self.follower = follower
        self._writes: set[asyncio.Task] = set()
        self._probes: dict[int, float] = {}  # account id -> when its half-open probe request started

    def start(self, addon) -> None:  # type: ignore[no-untyped-def]
        self.follower = addon.follower

    async def stop(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def order(self, candidates: list[AccountView], now: float | None = None) -> tuple[list[AccountView], tuple[int, float] | None]:
        """Half-open: after its cooldown an account gets one request to test it, not the whole burst.

        Accounts whose probe is still out go to the end of the list (still there, so a lone account keeps
        serving); if the first candidate is a cooled account nobody is testing, this request is its probe.
        Returns the order and the probe this request is, (account id, start), to hand back to `probe_done`."""
        now = time.time() if now is None else now
        waiting = [a for a in candidates if a.status == "cooling" and now - self._probes.get(a.id, -PROBE_TIMEOUT) < PROBE_TIMEOUT]
        if waiting:
            held = {a.id for a in waiting}
            candidates = [a for a in candidates if a.id not in held] + waiting
        first = candidates[0] if candidates else None
        if first is not None and first.status == "cooling" and now - self._probes.get(first.id, -PROBE_TIMEOUT) >= PROBE_TIMEOUT:
            self._probes[first.id] = now
            return candidates, (first.id, now)
        return candidates, None

    def probe_done(self, probe: tuple[int, float] | None) -> None:
        """A probe that outlived PROBE_TIMEOUT does not release the one that replaced it."""
        if probe is not None and self._probes.get(probe[0]) == probe[1]:
            del self._probes[probe[0]]

    def on_signal(self, account: AccountView, signal: Signal) -> Decision | None:
        now = time.time()
        decision = decide(signal, now, self.cooldown_max)
        if decision is None:
            return None
        current = self.follower.account(account.id) or account
        if current.status in ("disabled", "needs_reauth"):
            return None
        if current.status == "cooling" and (current.cooldown_until or 0) >= (decision.cooldown_until or 0):
            return None  # already cooling at least that long
        log.warning("account %s (%s) %s: %s", account.id, account.provider, decision.status, decision.reason)
        self.follower.replace_account(dataclasses.replace(current, status=decision.status, status_reason=decision.reason, cooldown_until=decision.cooldown_until))
        self._persist(account.id, decision.status, decision.reason, decision.cooldown_until)
        return decision

    def on_success(self, account: AccountView) -> None:
        """A cooled account that answered again (half-open test passed) is active again."""
        current = self.follower.account(account.id) or account
        if current.status != "cooling" or (current.cooldown_until or 0) > time.time():
            return
        self.follower.replace_account(dataclasses.replace(current, status="active", status_reason="", cooldown_until=None))
        self._persist(account.id, "active", "answered again after its cooldown", None)

    def _persist(self, account_id: int, status: str, reason: str, until: float | None) -> None:
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(account_store.set_status, account_id, status, reason, cooldown_until=until, kind="health")
        )
        self._writes.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storing an account state change failed: %s", task.exception())
