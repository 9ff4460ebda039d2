"""The proxy's in-memory view of keys and accounts follows the store; misses reload at a bounded rate."""

from __future__ import annotations

import asyncio
import time

from engine.follower import StoreFollower
from store import keys
from store.accounts import TokenSet, set_status, upsert_account


def test_follower_reloads_only_what_changed(store) -> None:
    follower = StoreFollower(store.cipher)
    follower.load_all()
    assert follower.keys == {} and follower.accounts == []
    row, key = keys.create_key("a")
    asyncio.run(follower.poll_once())
    assert keys.verify(key, follower.keys).id == row.id
    before_keys = follower.keys
    upsert_account("claude", "u1", TokenSet("acc", "ref", time.time() + 60), store.cipher)
    asyncio.run(follower.poll_once())
    assert follower.keys is before_keys  # keys untouched: only accounts reloaded
    assert [a.identity for a in follower.accounts] == ["u1"] and follower.accounts[0].access_token == "acc"
    keys.revoke_key(row.id)
    set_status(follower.accounts[0].id, "disabled", "test")
    asyncio.run(follower.poll_once())
    assert keys.verify(key, follower.keys).refusal() == "this Kleis key has been revoked"
    assert follower.accounts[0].status == "disabled"


def test_running_follower_sees_a_revocation_within_a_second(store) -> None:
    row, key = keys.create_key("a")

    async def scenario() -> float:
        follower = StoreFollower(store.cipher, interval=0.25)
        follower.load_all()
        follower.running()
        try:
            await asyncio.to_thread(keys.revoke_key, row.id)
            revoked = time.time()
            while keys.verify(key, follower.keys).refusal() is None:
                await asyncio.sleep(0.01)
            return time.time() - revoked
        finally:
            await follower.done()

    assert asyncio.run(scenario()) < 1.0


def test_misses_reload_keys_at_a_bounded_rate(store, monkeypatch) -> None:
    loads = []
    real = keys.load_records
    monkeypatch.setattr(keys, "load_records", lambda: loads.append(1) or real())

    async def scenario() -> None:
        follower = StoreFollower(store.cipher, miss_reload_gap=0.2)
        follower.load_all()
        loads.clear()
        _, key = await asyncio.to_thread(keys.create_key, "new")  # right after the initial load: inside the gap
        began = time.time()
        await asyncio.gather(*(follower.reload_keys_after_miss() for _ in range(50)))  # a burst of unknown keys
        assert keys.verify(key, follower.keys) is not None  # the new key is known: it waited for the gap, not refused
        assert len(loads) == 1 and time.time() - began < 0.5
        await asyncio.gather(*(follower.reload_keys_after_miss(time.time()) for _ in range(50)))  # another burst
        assert len(loads) == 2  # one more reload, not fifty

    asyncio.run(scenario())


def test_the_running_and_done_hooks_start_and_stop_the_poll(store) -> None:
    from mitmproxy import hooks
    from mitmproxy.test import taddons

    async def scenario() -> None:
        follower = StoreFollower(store.cipher, interval=0.02)
        follower.load_all()
        with taddons.context(follower) as tctx:
            await tctx.master.addons.invoke_addon(follower, hooks.RunningHook())
            seen = []
            follower.listeners.append(seen.append)
            await asyncio.to_thread(keys.create_key, "after start")
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            assert seen == ["keys"] and len(follower.keys) == 1
            await tctx.master.addons.invoke_addon(follower, hooks.DoneHook())
            await asyncio.to_thread(keys.create_key, "after done")
            await asyncio.sleep(0.1)
            assert len(follower.keys) == 1  # stopped: no more polls

    asyncio.run(scenario())


def test_the_follower_says_when_it_reads_the_store_again(store, monkeypatch, caplog) -> None:
    from engine import follower as follower_module

    follower = StoreFollower(store.cipher, interval=0.01)
    follower.load_all()
    failures = iter([RuntimeError("connection already closed")] * 3)
    real = follower_module.store_db.counters

    def flaky() -> dict[str, int]:
        error = next(failures, None)
        if error is not None:
            raise error
        return real()

    monkeypatch.setattr(follower_module.store_db, "counters", flaky)

    async def scenario() -> None:
        follower.running()
        try:
            for _ in range(500):
                if follower.healthy and any("reading the store again" in r.getMessage() for r in caplog.records):
                    return
                await asyncio.sleep(0.01)
        finally:
            await follower.done()

    asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert any("cannot read the store (connection already closed)" in m for m in messages)
    assert sum("reading the store again" in m for m in messages) == 1 and follower.healthy
