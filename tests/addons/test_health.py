"""Account health (engine.health): cooldowns applied in memory at once and to the store in the background;
half-open probes after a cooldown; `done` waits for the last write."""

from __future__ import annotations

import asyncio
import time

from mitmproxy import hooks
from mitmproxy.test import taddons

from core.enums import AccountStatus, SignalKind
from engine.follower import StoreFollower
from engine.health import HealthTracker
from providers.base import Signal
from store.models import Account
from tests.support.accounts import view
from tests.support.addons import seed


def tracker(store) -> tuple[HealthTracker, StoreFollower]:
    follower = StoreFollower(store.cipher)
    follower.load_all()
    return HealthTracker(3600, follower), follower


def test_a_rate_limit_cools_the_account_until_its_reset_in_memory_then_in_the_store(store) -> None:
    _, account_id = seed(store)
    health, follower = tracker(store)
    reset = time.time() + 600

    async def scenario() -> None:
        with taddons.context(health) as tctx:
            decision = health.on_signal(follower.accounts[0], Signal(SignalKind.RATE_LIMIT, "limit (429)", reset_at=reset))
            assert decision is not None and decision.cooldown_until == reset
            current = follower.account(account_id)
            assert current is not None and current.status == AccountStatus.COOLING  # at once, before the store write
            await tctx.master.addons.invoke_addon(health, hooks.DoneHook())  # waits for the write

    asyncio.run(scenario())
    row = Account.get_by_id(account_id)
    assert row.status == AccountStatus.COOLING and row.cooldown_until == reset and "limit (429)" in row.status_reason


def test_request_scoped_signals_leave_the_account_alone(store) -> None:
    seed(store)
    health, follower = tracker(store)

    async def scenario() -> None:
        for signal in (
            Signal(SignalKind.REQUEST, "bad request", account_wide=False),
            Signal(SignalKind.VERSION, "old", account_wide=False),
        ):
            assert health.on_signal(follower.accounts[0], signal) is None
        await health.done()

    asyncio.run(scenario())
    assert follower.accounts[0].status == AccountStatus.ACTIVE


def test_after_a_cooldown_one_request_probes_and_a_success_makes_the_account_active(store) -> None:
    _, account_id = seed(store)
    health, follower = tracker(store)
    now = time.time()
    over = view(account_id, "loop", status=AccountStatus.COOLING, cooldown=now - 1)
    other = view(99, "loop")
    order, probe = health.order([over, other], now)
    assert order == [over, other] and probe == (account_id, now)  # this request tests the cooled account
    order, second = health.order([over, other], now + 0.1)
    assert order == [other, over] and second is None  # the others go first while the probe is out
    health.probe_done(probe)
    follower.replace_account(over)

    async def scenario() -> None:
        health.on_success(over)
        await health.done()

    asyncio.run(scenario())
    current = follower.account(account_id)
    assert current is not None and current.status == AccountStatus.ACTIVE
    assert Account.get_by_id(account_id).status == AccountStatus.ACTIVE
