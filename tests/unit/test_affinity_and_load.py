"""Session affinity (engine.affinity) and per-account in-flight counts (engine.account_load)."""

from __future__ import annotations

import asyncio

from engine.account_load import AccountLoad
from engine.affinity import SessionAffinity


def test_a_conversation_keeps_its_account_for_the_ttl_after_its_last_request() -> None:
    affinity = SessionAffinity(ttl=3600, max_size=3)
    affinity.bind("a", 1, 0.0)
    assert affinity.account_for("a", 3599.0) == 1
    affinity.bind("a", 1, 3599.0)  # a request renews it
    assert affinity.account_for("a", 7000.0) == 1 and affinity.account_for("a", 7300.0) is None
    for name, account in (("b", 2), ("c", 3), ("d", 4), ("e", 5)):
        affinity.bind(name, account, 8000.0)
    assert len(affinity) == 3 and affinity.account_for("b", 8000.0) is None  # the least recent goes first


def test_past_its_cap_an_account_is_busy_and_a_waiter_gets_the_freed_slot() -> None:
    async def scenario() -> None:
        load = AccountLoad(max_in_flight=1)
        load.take(1)
        assert load.busy([1, 2]) == {1} and load.full(1) and not load.full(2)
        assert not await load.wait_for_slot([1], 0.05)  # nothing freed in time
        waiter = asyncio.ensure_future(load.wait_for_slot([1], 5))
        await asyncio.sleep(0.01)
        load.give_back(1)
        assert await waiter and load.in_flight(1) == 0
        assert AccountLoad(None).busy([1]) == set()

    asyncio.run(scenario())
