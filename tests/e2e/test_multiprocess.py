"""Several Kleis processes on one store (SQLite and PostgreSQL): one refresh, no reused refresh token, newest pair kept."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from core.config import Config
from store import keys
from store.accounts import TokenSet, upsert_account
from store.db import bump, open_store
from store.models import Account
from tests.support.loop_server import spawn, stop

BODY = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(params=["sqlite", "postgres"])
def shared_config(request, config: Config):
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        config = config.replace(database_url=server.new_database())
    store = open_store(config)
    yield config, store
    store.close()


async def race(urls: list[str], key: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        responses = await asyncio.gather(
            *(client.post(f"{urls[i % len(urls)]}/v1/messages", json=BODY, headers={"x-api-key": key}) for i in range(count))
        )
    return [r.status_code for r in responses]


def test_two_processes_race_200_requests_on_an_expired_token(shared_config, fake_oauth, fake_anthropic, fake_openai) -> None:
    config, store = shared_config
    access, refresh = fake_oauth.seed()
    row, _ = upsert_account("loop", "shared", TokenSet(access, refresh, time.time() - 60), store.cipher)
    _, key = keys.create_key("race")
    fake_oauth.token_delay = 0.3
    processes = [spawn(config, fake_oauth, fake_anthropic, fake_openai) for _ in range(2)]
    try:
        statuses = asyncio.run(race([url for _, url in processes], key, 200))
    finally:
        for process, _ in processes:
            stop(process)
    assert statuses == [200] * 200
    assert fake_oauth.reused_refresh_attempts == 0
    assert fake_oauth.refresh_calls == 1
    stored = Account.get_by_id(row.id)
    newest_refresh = store.cipher.decrypt(stored.refresh_token)
    assert newest_refresh in fake_oauth.live_refresh  # the stored refresh token is the one the provider will accept next
    assert stored.token_version == row.token_version + 1 and stored.refresh_lease_owner is None
    used = {r.headers["authorization"] for r in fake_anthropic.received("/v1/messages")}
    assert used == {f"Bearer {store.cipher.decrypt(stored.access_token)}"}


def test_a_crash_between_issue_and_commit_leaves_a_consistent_account(shared_config, fake_oauth, fake_anthropic, fake_openai) -> None:
    """The provider rotated the pair but Kleis died before storing it: the store keeps the old pair, the next
    process takes the dead process's lease over at once (same host, process gone) rather than waiting for it to
    expire, and learns from the provider that the old refresh token is spent (needs_reauth, with the reason) —
    nothing worse than what the provider did, and no process is stuck."""
    config, store = shared_config
    access, refresh = fake_oauth.seed()
    row, _ = upsert_account("loop", "crash", TokenSet(access, refresh, time.time() - 60), store.cipher)
    _, key = keys.create_key("crash")
    doomed, url = spawn(config, fake_oauth, fake_anthropic, fake_openai, KLEIS_FAULT_AFTER_TOKENS_ISSUED="1")
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"{url}/v1/messages", json=BODY, headers={"x-api-key": key}, timeout=20)
        assert doomed.wait(10) == 17
    finally:
        stop(doomed)
    assert fake_oauth.refresh_calls == 1  # the provider did issue a new pair
    stored = Account.get_by_id(row.id)
    assert stored.token_version == row.token_version and store.cipher.decrypt(stored.refresh_token) == refresh
    assert stored.refresh_lease_owner is not None and stored.refresh_lease_until > time.time() + 30  # the dead one's lease
    survivor, url = spawn(config, fake_oauth, fake_anthropic, fake_openai)
    try:
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/messages", json=BODY, headers={"x-api-key": key}, timeout=20)
        waited = time.monotonic() - started
    finally:
        stop(survivor)
    assert waited < 5, waited  # not the lease's 60 s
    assert response.status_code == 503 and "needs a new login" in response.json()["error"]["message"]
    stored = Account.get_by_id(row.id)
    assert stored.status == "needs_reauth" and "already used" in stored.status_reason
    assert stored.refresh_lease_owner is None


def test_a_refresh_killed_mid_call_never_resends_its_refresh_token_while_the_access_token_is_valid(
    shared_config, fake_oauth, fake_anthropic, fake_openai
) -> None:
    """The refreshing process is killed -9 while the token endpoint holds its answer (the provider rotates anyway).
    The other process takes the lease over, but whether the refresh token is spent is unknowable: it keeps serving
    with the stored access token (valid ~200 s) and does not call the token endpoint again. Once that token runs out
    it tries the refresh once; the provider refuses the spent token and the account asks for a new login, saying why."""
    config, store = shared_config
    access, refresh = fake_oauth.seed()
    row, _ = upsert_account("loop", "killed", TokenSet(access, refresh, time.time() + 200), store.cipher)  # inside the refresh skew
    _, key = keys.create_key("killed")
    fake_oauth.token_delay = 3.0
    doomed, url_a = spawn(config, fake_oauth, fake_anthropic, fake_openai)
    survivor = None
    try:
        with httpx.Client(timeout=20, headers={"x-api-key": key}) as client:
            assert client.post(f"{url_a}/v1/messages", json=BODY).status_code == 200  # starts a background refresh
            deadline = time.monotonic() + 10
            while not fake_oauth.received("/v1/oauth/token"):
                assert time.monotonic() < deadline, "the refresh never reached the token endpoint"
                time.sleep(0.02)
            doomed.kill()  # -9, while the endpoint holds its answer
            doomed.wait(10)
            while fake_oauth.refresh_calls < 1:  # the provider rotates the pair all the same
                assert time.monotonic() < deadline + 10
                time.sleep(0.05)
            assert Account.get_by_id(row.id).refresh_lease_owner is not None  # the dead process's lease
            survivor, url_b = spawn(config, fake_oauth, fake_anthropic, fake_openai)  # (its refresher sees the lease too)
            served = [client.post(f"{url_b}/v1/messages", json=BODY).status_code for _ in range(10)]
            assert served == [200] * 10  # valid tokens are served, never refused
            deadline = time.monotonic() + 10
            while "interrupted" not in (Account.get_by_id(row.id).last_refresh_result or ""):
                assert time.monotonic() < deadline, "the interrupted refresh was never noted"
                time.sleep(0.05)
            served += [client.post(f"{url_b}/v1/messages", json=BODY).status_code for _ in range(5)]
            assert served == [200] * 15 and fake_oauth.refresh_calls == 1 and fake_oauth.reused_refresh_attempts == 0
            used = {r.headers["authorization"] for r in fake_anthropic.received("/v1/messages")}
            assert used == {f"Bearer {access}"}
            noted = Account.get_by_id(row.id)
            assert noted.status == "active" and noted.meta["refresh_interrupted"]["version"] == row.token_version
            # the access token runs out: one careful attempt, refused by the provider -> a clear request for a login
            Account.update(expires_at=time.time() - 1).where(Account.id == row.id).execute()
            bump("accounts")
            deadline = time.monotonic() + 10
            while True:
                answer = client.post(f"{url_b}/v1/messages", json=BODY)
                if answer.status_code != 200:
                    break
                assert time.monotonic() < deadline, "the expired token kept being served"
                time.sleep(0.05)
    finally:
        stop(doomed)
        if survivor is not None:
            stop(survivor)
    assert answer.status_code == 503 and "needs a new login" in answer.json()["error"]["message"]
    assert fake_oauth.refresh_calls == 2 and fake_oauth.reused_refresh_attempts == 1  # the one careful attempt
    stored = Account.get_by_id(row.id)
    assert stored.status == "needs_reauth" and "interrupted refresh" in stored.status_reason and "log in again" in stored.status_reason


MESSAGE_TOKENS = 12 + 100 + 20 + 7  # what the fake Anthropic reports per message: input, cache read, cache write, output


def refused_when_polled(client: httpx.Client, url: str, timeout: float = 10.0) -> tuple[httpx.Response, float]:
    """Poll with count_tokens (budget-checked, consumes nothing) until the process refuses; (answer, seconds waited)."""
    started = time.time()
    while True:
        probe = client.post(f"{url}/v1/messages/count_tokens", json=BODY)
        if probe.status_code == 429 or time.time() - started > timeout:
            return probe, time.time() - started
        assert probe.status_code == 200, probe.text
        time.sleep(0.02)


def test_two_processes_share_a_key_budget(shared_config, fake_oauth, fake_anthropic, fake_openai) -> None:
    """What one process spends, the other refuses within about a second; spending on both adds up."""
    config, store = shared_config
    access, refresh = fake_oauth.seed()
    upsert_account("loop", "shared", TokenSet(access, refresh, time.time() + 3600), store.cipher)
    _, spent_on_a = keys.create_key("spent on A", token_budget=3 * MESSAGE_TOKENS, budget_window="day")
    _, spent_on_both = keys.create_key("spent on both", token_budget=2 * MESSAGE_TOKENS, budget_window="day")
    processes = [spawn(config, fake_oauth, fake_anthropic, fake_openai) for _ in range(2)]
    (_, url_a), (_, url_b) = processes
    try:
        with httpx.Client(timeout=20, headers={"x-api-key": spent_on_a}) as client:
            assert [client.post(f"{url_a}/v1/messages", json=BODY).status_code for _ in range(4)] == [200, 200, 200, 429]
            refused, learnt_after = refused_when_polled(client, url_b)  # B served this key nothing
            assert refused.status_code == 429 and "of its 417 tokens for this day" in refused.json()["error"]["message"]
            assert client.post(f"{url_b}/v1/messages", json=BODY).status_code == 429
        with httpx.Client(timeout=20, headers={"x-api-key": spent_on_both}) as client:
            assert client.post(f"{url_a}/v1/messages", json=BODY).status_code == 200
            assert client.post(f"{url_b}/v1/messages", json=BODY).status_code == 200
            assert refused_when_polled(client, url_a)[0].status_code == 429
            assert refused_when_polled(client, url_b)[0].status_code == 429
    finally:
        for process, _ in processes:
            stop(process)
    assert len(fake_anthropic.received("/v1/messages")) == 5  # every refusal was Kleis's own
    assert learnt_after < 3.0  # writer interval + reconcile interval ≈ 1 s; generous for a busy machine
