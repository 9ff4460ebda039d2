"""Keeping the model catalog current (an addon): models.dev by its TTL, each provider's own model list, and the
cached answers dropped when the accounts change."""

from __future__ import annotations

import logging

import httpx

from core.background import BackgroundTask, repeat
from engine.follower import StoreFollower
from providers.catalog import Catalog
from providers.lifecycle import TokenManager

log = logging.getLogger(__name__)


class CatalogRefresher:
    def __init__(self, catalog: Catalog, follower: StoreFollower, tokens: TokenManager, http: httpx.AsyncClient) -> None:
        self.catalog = catalog
        self.follower = follower
        self.tokens = tokens
        self.http = http
        self._background = BackgroundTask("kleis model catalog")
        catalog.follower = follower

    def running(self) -> None:
        self.follower.listeners.append(self._accounts_changed)
        self._background.start(self._run)

    async def done(self) -> None:
        await self._background.stop()

    def _accounts_changed(self, what: str) -> None:
        if what == "accounts":
            self.catalog.invalidate()

    async def _run(self) -> None:
        await repeat(
            lambda: self.catalog.refresh_once(self.http, self.tokens),
            min(60.0, self.catalog.config.models_ttl),
            lambda exc, failures: log.error("model catalog refresh failed", exc_info=exc),
        )
