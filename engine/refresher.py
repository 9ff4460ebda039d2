"""Proactive refresh (an addon): a background task renews tokens before they expire, so requests rarely wait for one.

Each pass looks at the in-memory accounts (no query) and refreshes, one at a time, those the request path would
refresh within `lead` seconds (default: two passes), so a request finds a fresh token. The provider's own rule
decides when a token needs renewing (the skew before expiry; Copilot's `refresh_in`); the lead only makes sure
the pass before that moment catches it, and never stacks a second skew on top. Failures back
off per account (providers.lifecycle). The first pass starts after a random delay, so several Kleis
processes started together do not refresh in lockstep (and their leases keep them from doubling up).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from core.background import BackgroundTask, repeat
from core.enums import AccountStatus
from providers import oauth
from providers.lifecycle import RefreshFailed, TokenManager
from providers.pool import AccountSource

log = logging.getLogger(__name__)


class ProactiveRefresher:
    def __init__(self, tokens: TokenManager, follower: AccountSource, interval: float = 15.0, lead: float | None = None) -> None:
        self.tokens = tokens
        self.follower = follower
        self.interval = interval
        self.lead = 2 * interval if lead is None else lead
        self.refreshed = 0
        self.purge_every = 3600.0
        self._last_purge = 0.0
        self._background = BackgroundTask("kleis proactive refresh")

    # -- mitmproxy hooks ----------------------------------------------------------------
    def running(self) -> None:
        self._background.start(self._run)

    async def done(self) -> None:
        await self._background.stop()

    def due(self, tokens: TokenManager, now: float) -> list[int]:
        """Accounts to refresh now: usable or cooling (a cooldown does not stop the clock), not in backoff."""
        ids = []
        for account in self.follower.accounts:
            if account.status in (AccountStatus.DISABLED, AccountStatus.NEEDS_REAUTH) or not account.refresh_token:
                continue
            if tokens.backoff_remaining(account.id, now, account.status_changed_at if account.status == AccountStatus.ACTIVE else None) > 0:
                continue
            if tokens.needs_refresh(account, now + self.lead):
                ids.append(account.id)
        return ids

    async def run_once(self) -> int:
        tokens = self.tokens
        done = 0
        for account_id in self.due(tokens, time.time()):
            try:
                await tokens.refresh(account_id, horizon=self.lead)
                done += 1
            except RefreshFailed as exc:
                log.warning("proactive refresh of account %s failed: %s", account_id, exc)
            except Exception:
                log.exception("proactive refresh of account %s failed", account_id)
        self.refreshed += done
        return done

    async def purge_expired_logins(self, now: float | None = None) -> int:
        """Hourly: drop expired logins in progress and pending imports, even when no new login comes to do it."""
        now = time.time() if now is None else now
        if now - self._last_purge < self.purge_every:
            return 0
        self._last_purge = now
        removed = await asyncio.to_thread(oauth.purge_expired_states, now)
        if removed:
            log.info("removed %d expired login(s) in progress", removed)
        return removed

    async def _run(self) -> None:
        await asyncio.sleep(random.uniform(0, min(self.interval, 5.0)))
        await repeat(self._pass, lambda: self.interval, lambda exc, failures: log.error("proactive refresh pass failed", exc_info=exc))

    async def _pass(self) -> None:
        await self.run_once()
        await self.purge_expired_logins()
