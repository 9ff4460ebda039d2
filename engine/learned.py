"""Learned values to and from the store (an addon): what the request path learned is written off the event loop.

Providers observe values in memory (providers.learned); this addon writes the new ones every `interval` seconds in
a thread (store.learned keeps the higher version), flushes on shutdown, and merges what the follower reads back
from the store, so every Kleis process on one store presents what any of them learned, within a second.
"""

from __future__ import annotations

import asyncio
import logging

from core.background import BackgroundTask
from engine.follower import StoreFollower
from providers.learned import LearnedValues
from store import learned as learned_store

log = logging.getLogger(__name__)


class LearnedRecorder:
    def __init__(self, learned: LearnedValues, follower: StoreFollower, interval: float = 0.5) -> None:
        self.learned = learned
        self.follower = follower
        self.interval = interval
        self.written = 0
        self._background = BackgroundTask("kleis learned values")

    # -- mitmproxy hooks ----------------------------------------------------------------
    def running(self) -> None:
        self.follower.listeners.append(self._store_changed)
        self._background.start(self._run)

    async def done(self) -> None:
        await self._background.stop()
        await self.flush()

    # -- work -----------------------------------------------------------------------------
    def _store_changed(self, what: str) -> None:
        if what == "learned":
            self.learned.merge(self.follower.learned)

    async def flush(self) -> None:
        """Write the values learned since the last flush (in a thread); on failure they are kept for the next one."""
        pending = self.learned.take_dirty()
        if not pending:
            return
        try:
            changed = await asyncio.to_thread(learned_store.save, pending)
        except Exception as exc:
            self.learned.mark_dirty(set(pending))
            log.warning("storing learned values failed (%s); retrying", exc)
            return
        self.written += len(changed)
        for name, value in changed.items():
            log.info("learned %s = %s (stored; `kleis.py doctor` shows it)", name, value)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()
