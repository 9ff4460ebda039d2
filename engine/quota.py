"""Subscription quota as an addon: each account's last reading in memory for the request path, shared through the store.

Readings arrive with the answers (`observe`, on the event loop: a dict update, no I/O) and, for Copilot, after a
token renewal (`refreshed`, a background fetch). Once a second a background task writes the readings that changed
and reads back every account's (other processes' answers, the admin's view), newest reading per window winning;
`done` writes what is left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping

import httpx

from core.background import BackgroundTask, repeat, worth_logging
from core.enums import SignalKind
from providers import quota as quotas
from providers.base import Provider, Signal
from providers.pool import AccountSource
from providers.quota import QuotaReading
from store import quota as quota_store
from store.accounts import AccountView

log = logging.getLogger(__name__)


class QuotaTracker:
    def __init__(
        self, providers: Mapping[str, Provider], http: httpx.AsyncClient, accounts: AccountSource | None = None, interval: float = 1.0
    ) -> None:
        self.providers = providers
        self.http = http
        self.accounts = accounts
        self.interval = interval
        self.readings: dict[int, QuotaReading] = {}
        self._dirty: set[int] = set()
        self._logged: set[tuple[int, frozenset[str]]] = set()
        self._fetches: set[asyncio.Task[None]] = set()
        self._background = BackgroundTask("kleis quota sync")

    # -- the request path (memory only) ---------------------------------------------------------
    def reading(self, account_id: int) -> QuotaReading | None:
        return self.readings.get(account_id)

    def observe(self, account_id: int, reading: QuotaReading) -> QuotaReading:
        reading, problems = quotas.sanitized(reading, time.time())
        if problems:
            self._ignored(account_id, problems)
        merged = quotas.merge(self.readings.get(account_id), reading)
        self.readings[account_id] = merged
        self._dirty.add(account_id)
        return merged

    def read_answer(self, account_id: int, provider: Provider, headers: Mapping[str, str], now: float) -> QuotaReading | None:
        """The quota an answer's headers carry (names in any case), kept for its account; None when there is none."""
        reading = provider.read_quota(headers, now)
        return None if reading is None else self.observe(account_id, reading)

    def _ignored(self, account_id: int, problems: list[str]) -> None:
        """One log line per account and kind of bad number, not one per answer."""
        kinds = frozenset(problem.split("=")[0] for problem in problems)
        if (account_id, kinds) in self._logged:
            return
        if len(self._logged) < 1000:
            self._logged.add((account_id, kinds))
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        log.warning("ignored quota values of account %s that are not finite or out of range: %s", account_id, shown[:500])

    def note_limit(self, account_id: int, signal: Signal, now: float) -> None:
        """A provider's own "limit reached" (a 429 with a reset): the account's quota is refused until then."""
        if signal.kind == SignalKind.RATE_LIMIT and signal.account_wide and signal.reset_at is not None and signal.reset_at > now:
            self.observe(account_id, QuotaReading(seen_at=now, status="rejected", resets_at=signal.reset_at))

    def used_ratios(self) -> Iterator[tuple[int, str, str, float]]:
        """(account id, provider, window, used share) of every fresh window, for the metrics at scrape time."""
        now = time.time()
        providers = {a.id: a.provider for a in self.accounts.accounts} if self.accounts is not None else {}
        for account_id, reading in list(self.readings.items()):
            for window in reading.fresh_windows(now):
                if window.used is not None and account_id in providers:
                    yield account_id, providers[account_id], window.name, window.used

    # -- Copilot: read after a renewal ----------------------------------------------------------
    def refreshed(self, account: AccountView) -> None:
        """A token renewal just committed: for providers that report quota only on request, ask now (in the background)."""
        provider = self.providers.get(account.provider)
        if provider is None or not provider.quota_on_refresh:
            return
        task = asyncio.get_running_loop().create_task(self._fetch(provider, account))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def _fetch(self, provider: Provider, account: AccountView) -> None:
        try:
            reading = await provider.fetch_quota(account, self.http)
        except (httpx.HTTPError, ValueError) as exc:
            log.info("reading the quota of account %s failed (kept the last one): %s", account.id, exc)
            return
        if reading is not None:
            self.observe(account.id, reading)

    def fetch_missing(self) -> None:
        """At start: accounts of such providers with no reading yet are asked once, not only at their next renewal."""
        for account in self.accounts.accounts if self.accounts is not None else []:
            if account.id not in self.readings and account.usable():
                self.refreshed(account)

    # -- background: store ------------------------------------------------------------------------
    def running(self) -> None:
        self._background.start(self._run)

    async def done(self) -> None:
        await self._background.stop()
        for task in list(self._fetches):
            task.cancel()
        try:
            await self.sync_once()
        except Exception as exc:
            log.warning("storing the last quota readings failed at shutdown: %s", exc)

    async def sync_once(self) -> None:
        dirty, self._dirty = self._dirty, set()
        changed = {i: (quotas.to_dict(self.readings[i]), self.readings[i].seen_at) for i in dirty if i in self.readings}
        try:
            stored = await asyncio.to_thread(self._exchange, changed)
        except Exception:
            self._dirty |= dirty  # written on the next pass
            raise
        for account_id, data in stored.items():
            self.readings[account_id] = quotas.merge(self.readings.get(account_id), quotas.from_dict(data))

    @staticmethod
    def _exchange(changed: dict[int, tuple[dict[str, object], float]]) -> dict[int, dict[str, object]]:
        if changed:
            quota_store.save(changed)
        return quota_store.load()

    def load_stored(self) -> None:
        """Blocking: what the store already knows (at start, before the loop serves anyone); readings stored before
        their numbers were checked are cleaned first."""
        cleaned = quotas.clean_stored(time.time())
        if cleaned:
            log.warning("cleaned stored quota readings with numbers out of range (accounts %s)", ", ".join(map(str, cleaned)))
        for account_id, data in quota_store.load().items():
            self.readings[account_id] = quotas.merge(self.readings.get(account_id), quotas.from_dict(data))

    async def _run(self) -> None:
        self.fetch_missing()
        await repeat(self.sync_once, lambda: self.interval, self._sync_failed)

    @staticmethod
    def _sync_failed(exc: Exception, failures: int) -> None:
        if worth_logging(failures):
            log.warning("cannot sync quota readings with the store (%s); kept in memory, retrying", exc)
