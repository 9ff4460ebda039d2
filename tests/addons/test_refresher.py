"""Proactive refresh (engine.refresher): `running` starts passes that renew tokens before the request path would
need to; `done` stops them."""

from __future__ import annotations

import asyncio
import time

import httpx
from mitmproxy import hooks
from mitmproxy.test import taddons

from engine.follower import StoreFollower
from engine.refresher import ProactiveRefresher
from providers.lifecycle import TokenManager
from store.accounts import AccountView, TokenSet
from store.models import Account
from tests.fakes.loopback_provider import LoopbackProvider
from tests.support.addons import seed


class CountingProvider(LoopbackProvider):
    """Refreshes without a network: a new pair each time, counted."""

    calls = 0

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        type(self).calls += 1
        return TokenSet(f"sk-new-access-{self.calls}", f"sk-new-refresh-{self.calls}", time.time() + 3600)


def test_running_renews_a_token_near_expiry_once_and_done_stops(store, config) -> None:
    _, account_id = seed(store, expires_in=20)  # inside the refresh skew (300 s)
    CountingProvider.calls = 0
    provider = CountingProvider(config, {}, "")

    async def scenario() -> None:
        follower = StoreFollower(store.cipher)
        follower.load_all()
        async with httpx.AsyncClient() as http:
            tokens = TokenManager(store, {"loop": provider}, http, on_update=follower.replace_account)
            refresher = ProactiveRefresher(tokens, follower, interval=0.05)
            assert refresher.due(tokens, time.time()) == [account_id]
            with taddons.context(refresher) as tctx:
                await tctx.master.addons.invoke_addon(refresher, hooks.RunningHook())
                for _ in range(300):
                    if refresher.refreshed:
                        break
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.2)  # several more passes: the fresh token is not due again
                await tctx.master.addons.invoke_addon(refresher, hooks.DoneHook())
            assert refresher.refreshed == 1 and refresher.due(tokens, time.time()) == []
            assert follower.accounts[0].access_token == "sk-new-access-1"  # the proxy's view has it at once

    asyncio.run(scenario())
    assert CountingProvider.calls == 1
    assert Account.get_by_id(account_id).token_version == 2
