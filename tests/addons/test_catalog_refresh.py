"""The catalog refresher (engine.catalog_refresh): `running` follows account changes and starts the refresh loop;
a change of accounts drops the catalog's cached answers; `done` stops the loop."""

from __future__ import annotations

import asyncio

import httpx
from mitmproxy import hooks
from mitmproxy.test import taddons

from engine.catalog_refresh import CatalogRefresher
from engine.follower import StoreFollower
from providers.catalog import Catalog
from providers.lifecycle import TokenManager
from tests.support.addons import loop_provider, seed


def test_account_changes_invalidate_the_catalog_and_done_stops_the_loop(store, config) -> None:
    async def scenario() -> None:
        follower = StoreFollower(store.cipher, interval=0.02)
        follower.load_all()
        providers = {"loop": loop_provider(config)}
        catalog = Catalog(config, providers)
        passes = []

        async def refresh_once(http: httpx.AsyncClient, tokens: TokenManager) -> None:
            passes.append(1)

        catalog.refresh_once = refresh_once
        async with httpx.AsyncClient() as http:
            refresher = CatalogRefresher(catalog, follower, TokenManager(store, providers, http), http)
            with taddons.context(follower, refresher) as tctx:
                for addon in (follower, refresher):
                    await tctx.master.addons.invoke_addon(addon, hooks.RunningHook())
                before = catalog.api_json_bytes("http://kleis.test")
                assert catalog.api_json_bytes("http://kleis.test") is before  # cached
                await asyncio.to_thread(seed, store)
                for _ in range(200):
                    if catalog.api_json_bytes("http://kleis.test") is not before:
                        break
                    await asyncio.sleep(0.01)
                assert catalog.api_json_bytes("http://kleis.test") is not before  # rebuilt after the account appeared
                assert passes  # the loop ran its first pass
                for addon in (refresher, follower):
                    await tctx.master.addons.invoke_addon(addon, hooks.DoneHook())
                count = len(passes)
                await asyncio.sleep(0.1)
                assert len(passes) == count

    asyncio.run(scenario())
