"""The proxy's in-memory view of the store (keys, accounts, learned values), following it within a second (an addon).

A background task reads the change counters every `interval` seconds (one small query) and reloads keys or
accounts when theirs moved, so a key revoked or an account changed by the CLI, the admin or another Kleis
process takes effect in every process within a second, with no query on a request's path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from core.background import BackgroundTask, repeat, worth_logging
from core.listeners import tell_all
from store import db as store_db
from store import keys as key_store
from store import learned as learned_store
from store.accounts import AccountView, load_views
from store.crypto import TokenCipher

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Polled:
    """What one poll read: each table whose counter moved (None: unchanged), and the counters."""

    keys: dict[str, key_store.KeyRecord] | None
    accounts: list[AccountView] | None
    learned: dict[str, str] | None
    counters: dict[str, int]


class StoreFollower:
    def __init__(self, cipher: TokenCipher, interval: float = 0.25, miss_reload_gap: float = 0.25) -> None:
        self.cipher = cipher
        self.interval = interval
        self.miss_reload_gap = miss_reload_gap
        self.keys: dict[str, key_store.KeyRecord] = {}
        self.accounts: list[AccountView] = []
        self.learned: dict[str, str] = {}  # store.learned values (client versions seen, versions adopted)
        self.loaded_at = 0.0
        self.healthy = True
        self._failing_since: float | None = None
        self._counters: dict[str, int] = {}
        self._background = BackgroundTask("kleis store follower")
        self._miss_reload: asyncio.Task[None] | None = None
        self._last_key_reload = 0.0
        self.listeners: list[Callable[[str], None]] = []

    # -- loading ---------------------------------------------------------------------
    def load_all(self) -> None:
        """Blocking full load (at start, before the loop runs)."""
        self._counters = store_db.counters()
        self.keys = key_store.load_records()
        self.accounts = load_views(self.cipher)
        self.learned = learned_store.load()
        self.loaded_at = self._last_key_reload = time.time()

    def _poll(self) -> Polled:
        counters = store_db.counters()

        def moved(name: str) -> bool:
            return counters.get(name) != self._counters.get(name)

        return Polled(
            key_store.load_records() if moved("keys") else None,
            load_views(self.cipher) if moved("accounts") else None,
            learned_store.load() if moved("learned") else None,
            counters,
        )

    async def poll_once(self) -> None:
        polled_at = time.time()
        polled = await asyncio.to_thread(self._poll)
        self._apply(polled, polled_at)

    def _apply(self, polled: Polled, polled_at: float) -> None:
        self._counters = polled.counters
        if polled.keys is not None:
            self.keys = polled.keys
            self._last_key_reload = polled_at
            self._notify("keys")
        if polled.accounts is not None:
            self.accounts = polled.accounts
            self._notify("accounts")
        if polled.learned is not None:
            self.learned = polled.learned
            self._notify("learned")
        self.loaded_at = time.time()
        self.healthy = True

    def _notify(self, what: str) -> None:
        tell_all(self.listeners, what, "store change")

    # -- mitmproxy hooks ----------------------------------------------------------------
    def running(self) -> None:
        self._background.start(self._run)

    async def done(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        await repeat(self.poll_once, lambda: self.interval, self._poll_failed, self._poll_succeeded)

    def _poll_succeeded(self) -> None:
        if self._failing_since is not None:
            log.warning("reading the store again after %.0fs", time.time() - self._failing_since)
            self._failing_since = None

    def _poll_failed(self, exc: Exception, failures: int) -> None:
        self.healthy = False
        if self._failing_since is None:
            self._failing_since = time.time()
        if worth_logging(failures):
            log.warning("cannot read the store (%s); serving from memory, retrying", exc)

    async def reload_keys_after_miss(self, started: float | None = None) -> None:
        """An unknown key may be brand new: reload keys once no reload began after the key was presented.

        Reloads start at most once per `miss_reload_gap` seconds (a flood of bad keys costs at most that many
        queries); concurrent misses share one reload, waiting for the gap to pass rather than being refused.
        """
        started = time.time() if started is None else started
        if self._last_key_reload >= started:
            return  # a reload that began after this key arrived has already finished
        if self._miss_reload is None or self._miss_reload.done():
            wait = max(0.0, self._last_key_reload + self.miss_reload_gap - time.time())
            self._miss_reload = asyncio.get_running_loop().create_task(self._reload_keys(wait))
        await asyncio.shield(self._miss_reload)

    async def _reload_keys(self, wait: float = 0.0) -> None:
        if wait:
            await asyncio.sleep(wait)
        reload_started = time.time()

        def load() -> tuple[dict[str, key_store.KeyRecord], dict[str, int]]:
            return key_store.load_records(), store_db.counters()

        keys, counters = await asyncio.to_thread(load)
        self.keys = keys
        self._counters["keys"] = counters.get("keys", 0)
        self._last_key_reload = reload_started

    # -- queries (memory only) -----------------------------------------------------------
    def account(self, account_id: int) -> AccountView | None:
        for account in self.accounts:
            if account.id == account_id:
                return account
        return None

    def replace_account(self, view: AccountView) -> None:
        """Take a fresher view at once (e.g. right after this process refreshed its tokens)."""
        self.accounts = [view if a.id == view.id else a for a in self.accounts]
