"""The quota tracker (engine.quota): readings kept in memory for the request path, shared through the store, read
after a renewal for Copilot-like providers, and a provider's own "limit reached" noted."""

from __future__ import annotations

import asyncio
import time

import httpx
from mitmproxy import hooks
from mitmproxy.test import taddons

from core.enums import SignalKind
from engine.quota import QuotaTracker
from providers.base import Signal
from providers.quota import QuotaReading, QuotaWindow
from store import quota as quota_store
from store.accounts import AccountView
from tests.fakes.loopback_provider import LoopbackProvider
from tests.fakes.quota import claude_unified
from tests.support.addons import seed


def five_hour(used: float, seen_at: float) -> QuotaReading:
    return QuotaReading((QuotaWindow("5h", used, seen_at + 3600, "allowed", seen_at),), seen_at)


def test_answers_are_read_in_memory_and_shared_through_the_store(store, config) -> None:
    _, account_id = seed(store)
    provider = LoopbackProvider(config, {}, "")

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            here, there = QuotaTracker({"loop": provider}, http), QuotaTracker({"loop": provider}, http)
            reading = here.read_answer(account_id, provider, claude_unified(0.97), time.time())
            assert reading is not None and here.reading(account_id) is reading  # at once, no store involved
            assert quota_store.load() == {}
            await here.sync_once()
            await there.sync_once()  # another process on the same store
            seen = there.reading(account_id)
            assert seen is not None and seen.window("5h") is not None and seen.window("5h").used == 0.97
            newer = five_hour(0.2, time.time() + 1)
            there.observe(account_id, newer)
            await there.sync_once()
            await here.sync_once()
            assert here.reading(account_id).window("5h").used == 0.2
            here.observe(account_id, five_hour(0.9, time.time() - 60))  # an old answer arriving late
            await here.sync_once()
            assert here.reading(account_id).window("5h").used == 0.2

    asyncio.run(scenario())


def test_done_writes_what_is_left(store, config) -> None:
    _, account_id = seed(store)

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            tracker = QuotaTracker({}, http, interval=3600)
            with taddons.context(tracker) as tctx:
                await tctx.master.addons.invoke_addon(tracker, hooks.RunningHook())
                tracker.observe(account_id, five_hour(0.5, time.time()))
                await tctx.master.addons.invoke_addon(tracker, hooks.DoneHook())

    asyncio.run(scenario())
    assert quota_store.load()[account_id]["windows"][0]["used"] == 0.5


class RenewalQuota(LoopbackProvider):
    """Reports its quota only on request, like Copilot."""

    quota_on_refresh = True
    asked: list[int] = []

    async def fetch_quota(self, account: AccountView, http: httpx.AsyncClient) -> QuotaReading | None:
        self.asked.append(account.id)
        return QuotaReading((QuotaWindow("premium", 0.4, None, "", time.time()),), time.time())


def test_a_renewal_reads_the_quota_of_providers_that_report_it_on_request(store, config) -> None:
    from tests.support.accounts import account_view

    _, account_id = seed(store)
    provider = RenewalQuota(config, {}, "")
    RenewalQuota.asked = []

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            tracker = QuotaTracker({"loop": provider}, http)
            tracker.refreshed(account_view(store, account_id))
            for _ in range(100):
                if tracker.reading(account_id) is not None:
                    break
                await asyncio.sleep(0.01)
            premium = tracker.reading(account_id)
            assert premium is not None and premium.window("premium") is not None
            other = QuotaTracker({"loop": LoopbackProvider(config, {}, "")}, http)
            other.refreshed(account_view(store, account_id))  # answers carry it: nothing to ask
            await asyncio.sleep(0.05)
            assert other.reading(account_id) is None

    asyncio.run(scenario())
    assert RenewalQuota.asked == [account_id]


def test_a_limit_reached_refuses_the_accounts_quota_until_its_reset(store) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            tracker = QuotaTracker({}, http)
            now = time.time()
            tracker.note_limit(1, Signal(SignalKind.RATE_LIMIT, "limit", reset_at=now + 600), now)
            tracker.note_limit(2, Signal(SignalKind.RATE_LIMIT, "fast mode", reset_at=now + 600, account_wide=False), now)
            tracker.note_limit(3, Signal(SignalKind.SERVER, "500"), now)
            reading = tracker.reading(1)
            assert reading is not None and reading.rejected(now) and not reading.rejected(now + 601)
            assert tracker.reading(2) is None and tracker.reading(3) is None

    asyncio.run(scenario())
