"""The service container and the addon order (addons.services): built once, stopped in order, the HTTP client last."""

from __future__ import annotations

import asyncio

from mitmproxy import hooks
from mitmproxy.test import taddons

from addons.budgets import BudgetTracker
from addons.catalog_refresh import CatalogRefresher
from addons.follower import StoreFollower
from addons.health import HealthTracker
from addons.learned import LearnedRecorder
from addons.quota import QuotaTracker
from addons.refresher import ProactiveRefresher
from addons.services import ClosesClient, Parts, background_addons, default_parts
from addons.usage_recorder import UsageRecorder
from tests.support.addons import loop_provider, make_services, seed


def test_every_part_runs_as_an_addon_in_order_and_the_client_closes_last(store, config) -> None:
    seed(store)

    async def scenario() -> None:
        with taddons.context() as tctx:
            services = make_services(store, config, tctx.master, default_parts(config, {"loop": loop_provider(config)}))
            assert [a.id for a in services.follower.accounts] == [1]  # the store is loaded before anyone is served
            chain = background_addons(services)
            kinds = [type(addon) for addon in chain]
            assert kinds == [
                ProactiveRefresher,
                CatalogRefresher,
                HealthTracker,
                QuotaTracker,
                BudgetTracker,
                UsageRecorder,
                LearnedRecorder,
                StoreFollower,
                ClosesClient,
            ]
            tctx.master.addons.add(*chain)
            for addon in chain:
                await tctx.master.addons.invoke_addon(addon, hooks.RunningHook())
            for addon in chain:
                await tctx.master.addons.invoke_addon(addon, hooks.DoneHook())
            assert services.http.is_closed and services.refresh_http.is_closed  # both clients, the last thing to stop

    asyncio.run(scenario())


def test_optional_parts_are_left_out(store, config) -> None:
    async def scenario() -> None:
        with taddons.context() as tctx:
            services = make_services(store, config, tctx.master, Parts())
            assert [type(addon) for addon in background_addons(services)] == [LearnedRecorder, StoreFollower, ClosesClient]
            await services.http.aclose()

    asyncio.run(scenario())
