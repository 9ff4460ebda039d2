"""The service container and the addon order (addons.services): built once, stopped in order, the HTTP client last."""

from __future__ import annotations

import asyncio

from mitmproxy import hooks
from mitmproxy.test import taddons

from addons.services import Background, ClosesClient, Parts, background_addons, default_parts
from engine.budgets import BudgetTracker
from engine.catalog_refresh import CatalogRefresher
from engine.follower import StoreFollower
from engine.health import HealthTracker
from engine.learned import LearnedRecorder
from engine.quota import QuotaTracker
from engine.refresher import ProactiveRefresher
from engine.usage_recorder import UsageRecorder
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
            background = Background(chain)  # one entry in mitmproxy's chain: it offers every flow event to each addon
            tctx.master.addons.add(background)
            assert sum(1 for addon in tctx.master.addons.chain if type(addon) in kinds) == 0
            await tctx.master.addons.invoke_addon(background, hooks.RunningHook())
            assert services.usage is not None and services.usage._thread is not None  # each part's running hook ran
            await tctx.master.addons.invoke_addon(background, hooks.DoneHook())
            assert services.http.is_closed and services.refresh_http.is_closed  # both clients, the last thing to stop


def test_a_part_that_fails_does_not_keep_the_others_from_starting_and_stopping(caplog) -> None:
    seen: list[str] = []

    class Broken:
        def running(self) -> None:
            raise RuntimeError("broken start")

        async def done(self) -> None:
            raise RuntimeError("broken stop")

    class Part:
        def running(self) -> None:
            seen.append("running")

        def done(self) -> None:  # a synchronous hook is called too
            seen.append("done")

    background = Background([Broken(), Part()])
    background.running()
    asyncio.run(background.done())
    assert seen == ["running", "done"]
    assert ["starting Broken failed", "stopping Broken failed"] == [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def test_optional_parts_are_left_out(store, config) -> None:
    async def scenario() -> None:
        with taddons.context() as tctx:
            services = make_services(store, config, tctx.master, Parts())
            assert [type(addon) for addon in background_addons(services)] == [LearnedRecorder, StoreFollower, ClosesClient]
            await services.http.aclose()

    asyncio.run(scenario())
