"""Refresh leases that know their owner, and refreshes that never hold up a request whose token is still valid:
a dead owner's lease taken over at once, a live one waited for briefly (and said so), a locked store or a slow
token endpoint costing valid-token requests nothing, and a late token answer still stored.
Here the parts that need a listener; the rest: tests/unit/test_refresh_leases.py."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import peewee
import pytest

from providers import lifecycle, refresh_lease
from providers.lifecycle import RefreshFailed, TokenManager
from store import lease_owner
from store.accounts import TokenSet, upsert_account
from store.models import Account
from tests.fakes.loopback_provider import LoopbackProvider
from tests.support.accounts import account_view

BODY = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


# -- owners ------------------------------------------------------------------------------------------


# -- waiting for a lease -------------------------------------------------------------------------------
def expired_account(store, fake_oauth, expires_in: float = -60):
    access, refresh = fake_oauth.seed()
    row, _ = upsert_account("loop", f"acct-{time.time()}", TokenSet(access, refresh, time.time() + expires_in), store.cipher)
    return account_view(store, row.id)


def hold_lease(account_id: int, owner: str, seconds: float = 60) -> None:
    Account.update(refresh_lease_owner=owner, refresh_lease_until=time.time() + seconds).where(Account.id == account_id).execute()


def run_refresh(store, fake_oauth, account_id: int, heard: list[str], wait: float = 15.0):
    provider = LoopbackProvider(store.config, {}, f"{fake_oauth.url}/v1/oauth/token")

    async def go():
        async with httpx.AsyncClient() as http:
            manager = TokenManager(store, {"loop": provider}, http, on_wait=heard.append)
            manager.lease_wait = wait
            return await manager.refresh(account_id, force=True)

    return asyncio.run(go())


def test_a_dead_owners_lease_is_taken_over_at_once(store, fake_oauth, caplog) -> None:
    account = expired_account(store, fake_oauth)
    mine = lease_owner.parse(lease_owner.new_owner())
    assert mine is not None
    hold_lease(account.id, f"{mine.host}:{mine.namespace}:{finished_pid()}:{mine.start}:dead01")  # crashed mid-refresh
    heard: list[str] = []
    started = time.monotonic()
    refreshed = run_refresh(store, fake_oauth, account.id, heard)
    assert time.monotonic() - started < 3 and refreshed.token_version == account.token_version + 1
    assert heard == [] and any("took over its refresh lease" in r.getMessage() for r in caplog.records)
    assert Account.get_by_id(account.id).refresh_lease_owner is None


@pytest.mark.parametrize("stopped", ["gone", "expired elsewhere"])
def test_an_interrupted_refresh_is_not_resent_while_the_access_token_is_valid(store, fake_oauth, caplog, stopped: str) -> None:
    """A lease whose owner is gone, or that ran out on another host, means a refresh cut mid-call: the refresh token
    may be spent. While the access token is valid it is not sent again; the account says why; an expired token (or
    an operator's forced refresh) gets one attempt."""
    account = expired_account(store, fake_oauth, expires_in=200)
    mine = lease_owner.parse(lease_owner.new_owner())
    assert mine is not None
    if stopped == "gone":
        hold_lease(account.id, f"{mine.host}:{mine.namespace}:{finished_pid()}:{mine.start}:dead01")
    else:
        hold_lease(account.id, "otherhost:f0000ffc:4242:123456:live01", seconds=-1)
    provider = LoopbackProvider(store.config, {}, f"{fake_oauth.url}/v1/oauth/token")

    async def scenario() -> tuple:
        async with httpx.AsyncClient() as http:
            manager = TokenManager(store, {"loop": provider}, http)
            kept = await manager.refresh(account.id)
            again = await manager.fresh(account_view(store, account.id))  # a request: served, nothing started
            assert manager.pending() == []
            forced = await manager.refresh(account.id, force=True)
            return kept, again, forced

    kept, again, forced = asyncio.run(scenario())
    assert kept.token_version == account.token_version and kept.access_token == account.access_token
    assert again.access_token == account.access_token
    assert kept.metadata["refresh_interrupted"]["version"] == account.token_version
    assert "process 4242 on otherhost" in kept.metadata["refresh_interrupted"]["owner"] or stopped == "gone"
    assert any("trying the refresh once" in r.getMessage() for r in caplog.records)
    assert forced.token_version == account.token_version + 1 and "refresh_interrupted" not in forced.metadata  # the one attempt
    assert fake_oauth.refresh_calls == 1
    assert Account.get_by_id(account.id).refresh_lease_owner is None


def test_a_live_owners_lease_is_waited_for_briefly_and_said_so(store, fake_oauth, caplog) -> None:
    account = expired_account(store, fake_oauth)
    hold_lease(account.id, "otherhost:f0000ffc:4242:123456:live01")
    heard: list[str] = []
    started = time.monotonic()
    with pytest.raises(RefreshFailed, match="another Kleis process is refreshing its token") as refused:
        run_refresh(store, fake_oauth, account.id, heard, wait=0.5)
    assert "4242" not in str(refused.value) and "otherhost" not in str(refused.value)  # the client learns no pid or host
    assert any("held by process 4242 on otherhost" in r.getMessage() for r in caplog.records)  # the operator does
    assert 0.5 <= time.monotonic() - started < 3
    assert len(heard) == 1 and "waiting up to 0s for its refresh lease, held by process 4242 on otherhost" in heard[0]
    assert fake_oauth.refresh_calls == 0  # the other process's refresh token is not spent twice


def test_cli_refresh_says_what_it_waits_for(store, config, fake_oauth, monkeypatch, capsys) -> None:
    from cli import main
    from providers import registry

    class LoopForCli(LoopbackProvider):
        def __init__(self, cfg) -> None:
            super().__init__(cfg, {}, f"{fake_oauth.url}/v1/oauth/token")

    monkeypatch.setitem(registry.PROVIDER_CLASSES, "loop", LoopForCli)
    monkeypatch.setenv("KLEIS_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("KLEIS_SECRET_KEY", config.secret_key)
    account = expired_account(store, fake_oauth, expires_in=3600)
    hold_lease(account.id, "otherhost:f0000ffc:4242:123456:live01")
    threading.Timer(1.0, lambda: Account.update(refresh_lease_owner=None, refresh_lease_until=None).execute()).start()
    assert main(["accounts", "refresh", str(account.id)]) == 0  # the other process let go after a second
    out = capsys.readouterr()
    assert "waiting up to 15s for its refresh lease, held by process 4242 on otherhost until" in out.err
    assert f"account {account.id} (loop) refreshed" in out.out


def test_a_slow_refresh_call_keeps_its_lease(store, fake_oauth, monkeypatch) -> None:
    """The lease is renewed while the token endpoint takes its time: nobody else spends the same refresh token."""
    monkeypatch.setattr(refresh_lease, "LEASE_SECONDS", 0.3)
    account = expired_account(store, fake_oauth)
    provider = LoopbackProvider(store.config, {}, f"{fake_oauth.url}/v1/oauth/token")
    fake_oauth.token_delay = 1.2  # four lease lifetimes

    async def both() -> list:
        async with httpx.AsyncClient() as http:
            managers = [TokenManager(store, {"loop": provider}, http) for _ in range(2)]
            first = asyncio.ensure_future(managers[0].refresh(account.id, force=True))
            await asyncio.sleep(0.5)  # the first holds the lease and waits for the endpoint
            return await asyncio.gather(first, managers[1].refresh(account.id), return_exceptions=True)

    results = asyncio.run(both())
    assert all(not isinstance(r, Exception) for r in results), results
    assert fake_oauth.refresh_calls == 1 and fake_oauth.reused_refresh_attempts == 0


# -- requests with a valid token never wait ----------------------------------------------------------------
def timed_posts(url: str, headers: dict, count: int) -> list[tuple[int, float]]:
    results = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(count):
            started = time.monotonic()
            status = client.post("/v1/messages", json=BODY, headers=headers).status_code
            results.append((status, time.monotonic() - started))
    return results


def test_a_locked_store_costs_valid_token_requests_nothing(kleis, store) -> None:
    account = kleis.add_account(expires_in=200)  # inside the 300 s refresh skew, valid for minutes
    path = store.config.effective_database_url.removeprefix("sqlite:///")
    locker = sqlite3.connect(path, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
    try:
        results = timed_posts(kleis.url, kleis.headers(), 5)
    finally:
        locker.rollback()
        locker.close()
    print("requests during a store lock:", [f"{seconds:.2f}s" for _, seconds in results])
    assert [status for status, _ in results] == [200] * 5
    assert max(seconds for _, seconds in results) < 2.5  # each waited SQLite's 10 s busy timeout before
    deadline = time.time() + 15
    while Account.get_by_id(account.id).token_version == account.token_version and time.time() < deadline:
        time.sleep(0.05)
    assert Account.get_by_id(account.id).token_version == account.token_version + 1  # refreshed once the lock went


def test_a_store_failure_is_waited_for_once_then_backs_off(store, fake_oauth, monkeypatch) -> None:
    from store import leases

    def locked(*args, **kwargs):
        time.sleep(0.5)  # what SQLite's busy timeout does, shorter
        raise peewee.OperationalError("database is locked")

    monkeypatch.setattr(leases, "acquire", locked)
    expired, valid = expired_account(store, fake_oauth), expired_account(store, fake_oauth, expires_in=200)
    provider = LoopbackProvider(store.config, {}, f"{fake_oauth.url}/v1/oauth/token")

    async def go() -> list[tuple[str, float]]:
        async with httpx.AsyncClient() as http:
            manager = TokenManager(store, {"loop": provider}, http)
            seen = []
            for view in (valid, expired, expired, valid):
                started = time.monotonic()
                try:
                    await manager.fresh(view)
                    outcome = "token"
                except RefreshFailed as exc:
                    outcome = str(exc)
                seen.append((outcome, time.monotonic() - started))
            return seen

    (valid_1, first, second, valid_2) = asyncio.run(go())
    assert valid_1[0] == "token" and valid_1[1] < 0.1 and valid_2[0] == "token" and valid_2[1] < 0.1
    assert "store is unavailable" in first[0] and first[1] >= 0.4
    assert "next attempt in" in second[0] and second[1] < 0.1  # backed off: not another wait per request


def test_a_slow_token_endpoint_does_not_delay_valid_token_requests(kleis) -> None:
    account = kleis.add_account(expires_in=200)
    kleis.oauth.token_delay = 5.0

    async def burst() -> list[float]:
        async with httpx.AsyncClient(base_url=kleis.url, timeout=30) as client:

            async def one() -> float:
                started = time.monotonic()
                response = await client.post("/v1/messages", json=BODY, headers=kleis.headers())
                assert response.status_code == 200
                return time.monotonic() - started

            return await asyncio.gather(*(one() for _ in range(20)))

    waits = asyncio.run(burst())
    print(f"20 requests during a 5 s refresh: slowest {max(waits):.2f}s")
    assert max(waits) < 2.5  # each waited for the whole refresh before
    deadline = time.time() + 10
    while Account.get_by_id(account.id).token_version == account.token_version and time.time() < deadline:
        time.sleep(0.05)
    assert Account.get_by_id(account.id).token_version == account.token_version + 1 and kleis.oauth.refresh_calls == 1


def test_a_refresh_answer_after_the_request_gave_up_is_still_stored(kleis) -> None:
    assert kleis.proxy.services.refresh_http.timeout.read == lifecycle.REFRESH_CALL_TIMEOUT >= 600
    account = kleis.add_account(expires_in=-60)
    kleis.proxy.services.tokens.request_wait = 0.5
    kleis.oauth.token_delay = 2.0
    with httpx.Client(base_url=kleis.url, timeout=30) as client:
        started = time.monotonic()
        gave_up = client.post("/v1/messages", json=BODY, headers=kleis.headers())
        assert gave_up.status_code == 503 and "takes longer than 0s" in gave_up.json()["error"]["message"]
        assert time.monotonic() - started < 1.5 and gave_up.headers["retry-after"]
        deadline = time.time() + 10
        while Account.get_by_id(account.id).token_version == account.token_version and time.time() < deadline:
            time.sleep(0.05)
        stored = Account.get_by_id(account.id)
        assert stored.token_version == account.token_version + 1  # the late answer was stored
        assert kleis.store.cipher.decrypt(stored.refresh_token) in kleis.oauth.live_refresh
        kleis.wait_for_accounts()
        assert client.post("/v1/messages", json=BODY, headers=kleis.headers()).status_code == 200
    assert kleis.oauth.refresh_calls == 1


def finished_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_a_process_of_this_host_that_ended_is_gone() -> None:
    mine = lease_owner.parse(lease_owner.new_owner())
    assert mine is not None
    alive = lease_owner.new_owner()
    dead = f"{mine.host}:{mine.namespace}:{finished_pid()}:{mine.start}:abc123"
    reused = f"{mine.host}:{mine.namespace}:{os.getpid()}:{int(mine.start) + 7}:abc123"  # our pid, another start time
    elsewhere = f"otherhost:{mine.namespace}:{finished_pid()}:{mine.start}:abc123"
    other_namespace = f"{mine.host}:ffff:{finished_pid()}:{mine.start}:abc123"
    assert not lease_owner.is_gone(alive) and lease_owner.is_gone(dead) and lease_owner.is_gone(reused)
    assert not lease_owner.is_gone(elsewhere) and not lease_owner.is_gone(other_namespace)
    assert not lease_owner.is_gone("oldhost:1234:abcdef") and not lease_owner.is_gone(None)  # an older Kleis's owner
