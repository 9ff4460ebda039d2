"""Token lifecycle in one process: single-flight refresh, rotation safety, re-auth, backoff, proactive refresh.
Here the parts that need a listener; the rest: tests/unit/test_lifecycle.py."""

from __future__ import annotations

import asyncio
import time

import httpx
import peewee

from addons.services import Parts
from store import leases
from store.models import Account, AccountEvent
from tests.fakes.base import Reply

BODY = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


async def burst(url: str, headers: dict, count: int, body: dict = BODY) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post("/v1/messages", json=body, headers=headers) for _ in range(count)))


def test_200_concurrent_requests_on_an_expired_token_make_one_refresh(kleis) -> None:
    account = kleis.add_account(expires_in=-60)
    kleis.oauth.token_delay = 0.3  # the refresh takes a while: every request arrives while it is in flight
    started = time.time()
    responses = asyncio.run(burst(kleis.url, kleis.headers(), 200))
    elapsed = time.time() - started
    assert [r.status_code for r in responses] == [200] * 200
    assert kleis.oauth.refresh_calls == 1 and kleis.oauth.reused_refresh_attempts == 0
    tokens = {r.headers["authorization"] for r in kleis.anthropic.received("/v1/messages")}
    assert len(tokens) == 1 and tokens != {f"Bearer {account.access_token}"}
    stored = Account.get_by_id(account.id)
    assert stored.token_version == account.token_version + 1 and stored.refresh_lease_owner is None
    print(f"200 requests on an expired token: {elapsed:.2f}s, 1 refresh")


def test_a_failed_commit_is_retried_at_once(kleis, monkeypatch) -> None:
    account = kleis.add_account(expires_in=-60)
    real_commit = leases.commit
    calls = []

    def flaky_commit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise peewee.OperationalError("database is locked")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(leases, "commit", flaky_commit)
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=kleis.headers())
    assert response.status_code == 200, response.text
    assert len(calls) == 2 and kleis.oauth.refresh_calls == 1
    stored = Account.get_by_id(account.id)
    assert stored.token_version == account.token_version + 1 and stored.refresh_lease_owner is None


def test_a_commit_that_keeps_failing_keeps_the_new_pair_and_the_lease_for_the_next_attempt(kleis, monkeypatch) -> None:
    account = kleis.add_account(expires_in=-60)
    real_commit = leases.commit
    failing = [True]

    def broken_commit(*args, **kwargs):
        if failing[0]:
            raise peewee.OperationalError("database is locked")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(leases, "commit", broken_commit)
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        first = client.post("/v1/messages", json=BODY, headers=kleis.headers())
        assert first.status_code == 503
        assert "could not be stored" in first.json()["error"]["message"] and first.headers["retry-after"]
        assert kleis.anthropic.received() == []  # the new access token was not used before it was stored
        # The lease stays held: no other process (or manager) spends the refresh token the provider rotated.
        assert Account.get_by_id(account.id).refresh_lease_owner
        failing[0] = False
        second = client.post("/v1/messages", json=BODY, headers=kleis.headers())
    assert second.status_code == 200, second.text
    assert kleis.oauth.refresh_calls == 1  # no second refresh: the pair issued the first time was stored
    stored = Account.get_by_id(account.id)
    assert stored.token_version == account.token_version + 1 and stored.refresh_lease_owner is None


def test_invalid_grant_marks_the_account_needs_reauth(kleis) -> None:
    account = kleis.add_account(expires_in=-60)
    Account.update(refresh_token=kleis.store.cipher.encrypt("sk-ant-ort01-revoked")).where(Account.id == account.id).execute()
    kleis.wait_for_accounts()
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=kleis.headers())
        assert response.status_code == 503 and "needs a new login" in response.json()["error"]["message"]
        stored = Account.get_by_id(account.id)
        assert stored.status == "needs_reauth" and "unknown refresh token" in stored.status_reason
        kleis.wait_for_accounts()
        again = client.post("/v1/messages", json=BODY, headers=kleis.headers())
        assert again.status_code == 503 and "needs a new login" in again.json()["error"]["message"]
    assert kleis.oauth.refresh_calls == 1  # a dead account is not hammered
    assert AccountEvent.select().where((AccountEvent.account_id == account.id) & (AccountEvent.status == "needs_reauth")).exists()


def test_transient_refresh_failures_keep_the_tokens_and_back_off(kleis) -> None:
    account = kleis.add_account(expires_in=-60)
    kleis.oauth.fail_next = [Reply(503, {"error": "temporarily_unavailable"})]
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        first = client.post("/v1/messages", json=BODY, headers=kleis.headers())
        assert first.status_code == 503 and "failed" in first.json()["error"]["message"]
        assert int(first.headers["retry-after"]) >= 5
        second = client.post("/v1/messages", json=BODY, headers=kleis.headers())
        assert second.status_code == 503 and "next attempt in" in second.json()["error"]["message"]
    stored = Account.get_by_id(account.id)
    assert stored.status == "active" and kleis.store.cipher.decrypt(stored.refresh_token) == account.refresh_token
    assert "refresh failed" in stored.last_refresh_result
    assert len(kleis.oauth.received("/v1/oauth/token")) == 1  # backing off, not retrying on every request


def test_a_401_marks_the_token_stale_and_the_same_account_refreshes(kleis) -> None:
    account = kleis.add_account()
    kleis.anthropic.valid_tokens.discard(account.access_token)  # the provider revoked this access token
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=kleis.headers())
    assert response.status_code == 200, response.text
    assert kleis.oauth.refresh_calls == 1
    assert [r.headers["authorization"] != f"Bearer {account.access_token}" for r in kleis.anthropic.received()] == [False, True]


def test_proactive_refresh_renews_a_token_with_no_request_in_flight(live_kleis, config, fake_oauth, fake_anthropic) -> None:
    live = live_kleis(Parts(refresh_interval=0.2, health=True))
    soon = live.add_account("soon", expires_in=config.refresh_skew + 1.0)  # enters the skew in a second
    later = live.add_account("later", expires_in=config.refresh_skew + 120)  # not yet: no second skew stacked on top
    deadline = time.time() + 8
    while Account.get_by_id(soon.id).token_version == soon.token_version and time.time() < deadline:
        time.sleep(0.05)
    assert Account.get_by_id(soon.id).token_version == soon.token_version + 1
    assert Account.get_by_id(later.id).token_version == later.token_version
    assert fake_oauth.refresh_calls == 1 and fake_anthropic.received() == []


def test_cli_refresh_prints_the_result(store, config, fake_oauth, monkeypatch) -> None:
    from providers import registry
    from tests.fakes.loopback_provider import LoopbackProvider

    class LoopForCli(LoopbackProvider):
        def __init__(self, cfg) -> None:
            super().__init__(cfg, {}, f"{fake_oauth.url}/v1/oauth/token")

    monkeypatch.setitem(registry.PROVIDER_CLASSES, "loop", LoopForCli)
    from store.accounts import TokenSet, upsert_account

    access, refresh = fake_oauth.seed()
    row, _ = upsert_account("loop", "cli", TokenSet(access, refresh, time.time() + 7200), store.cipher)
    from cli import main

    monkeypatch.setenv("KLEIS_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("KLEIS_SECRET_KEY", config.secret_key)
    assert main(["accounts", "refresh", str(row.id)]) == 0
    assert fake_oauth.refresh_calls == 1 and Account.get_by_id(row.id).token_version == row.token_version + 1
    fake_oauth.fail_next = [Reply(400, {"error": "invalid_grant", "error_description": "revoked"})]
    assert main(["accounts", "refresh", str(row.id)]) == 1
    assert Account.get_by_id(row.id).status == "needs_reauth"


def test_an_unexpected_provider_refusal_backs_off_instead_of_failing_the_proxy(kleis) -> None:
    account = kleis.add_account(expires_in=-60)
    kleis.oauth.fail_next = [Reply(400, {"error": "invalid_request", "error_description": "something new"})]

    async def refusing(account_view, http):
        from core.exceptions import ProviderError

        raise ProviderError("token endpoint said invalid_request")

    kleis.provider.refresh = refusing
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        response = client.post("/v1/messages", json=BODY, headers=kleis.headers())
    assert response.status_code == 503 and "invalid_request" in response.json()["error"]["message"]
    assert Account.get_by_id(account.id).status == "active"  # tokens kept, not marked dead


def test_an_operator_reset_lifts_the_refresh_backoff_at_once(kleis) -> None:
    from store.accounts import set_status

    account = kleis.add_account(expires_in=-60)
    kleis.oauth.fail_next = [Reply(503, {"error": "temporarily_unavailable"})]
    with httpx.Client(base_url=kleis.url, timeout=20) as client:
        assert client.post("/v1/messages", json=BODY, headers=kleis.headers()).status_code == 503
        assert "next attempt in" in client.post("/v1/messages", json=BODY, headers=kleis.headers()).json()["error"]["message"]
        set_status(account.id, "active", "reset by the operator (test)", kind="admin")
        kleis.wait_for_accounts()
        assert client.post("/v1/messages", json=BODY, headers=kleis.headers()).status_code == 200
    assert len(kleis.oauth.received("/v1/oauth/token")) == 2


def test_two_token_managers_in_one_process_refresh_once(store, fake_oauth) -> None:
    """The admin's "refresh now" runs beside the proxy's own manager: the lease must exclude it like a process."""
    from providers.lifecycle import TokenManager
    from store.accounts import TokenSet, upsert_account
    from tests.fakes.loopback_provider import LoopbackProvider

    access, refresh = fake_oauth.seed()
    row, _ = upsert_account("loop", "twice", TokenSet(access, refresh, time.time() - 60), store.cipher)
    provider = LoopbackProvider(store.config, {}, f"{fake_oauth.url}/v1/oauth/token")
    fake_oauth.token_delay = 0.3

    async def both() -> list:
        async with httpx.AsyncClient() as http:
            managers = [TokenManager(store, {"loop": provider}, http) for _ in range(2)]
            return await asyncio.gather(*(m.refresh(row.id, force=True) for m in managers), return_exceptions=True)

    results = asyncio.run(both())
    assert fake_oauth.refresh_calls == 1 and fake_oauth.reused_refresh_attempts == 0
    assert all(not isinstance(r, Exception) for r in results), results
    stored = Account.get_by_id(row.id)
    assert stored.status == "active" and stored.token_version == row.token_version + 1


def test_a_pair_not_yet_stored_keeps_another_manager_from_spending_the_refresh_token(store, fake_oauth, monkeypatch) -> None:
    from providers.lifecycle import RefreshFailed, TokenManager
    from store.accounts import AccountView, TokenSet, upsert_account
    from tests.fakes.loopback_provider import LoopbackProvider

    access, refresh = fake_oauth.seed()
    row, _ = upsert_account("loop", "kept", TokenSet(access, refresh, time.time() - 60), store.cipher)
    provider = LoopbackProvider(store.config, {}, f"{fake_oauth.url}/v1/oauth/token")
    real_commit = leases.commit
    failing = [True]

    def broken_commit(*args, **kwargs):
        if failing[0]:
            raise peewee.OperationalError("disk I/O error")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(leases, "commit", broken_commit)

    async def run() -> tuple[object, object, AccountView]:
        async with httpx.AsyncClient() as http:
            first, second = (TokenManager(store, {"loop": provider}, http) for _ in range(2))
            second.lease_wait = 0.5
            failed = await asyncio.gather(first.refresh(row.id, force=True), return_exceptions=True)
            refused = await asyncio.gather(second.refresh(row.id, force=True), return_exceptions=True)
            failing[0] = False
            stored = await first.refresh(row.id, force=True)
            return failed[0], refused[0], stored

    failed, refused, stored = asyncio.run(run())
    assert isinstance(failed, RefreshFailed) and "could not be stored" in str(failed)
    assert isinstance(refused, RefreshFailed) and "another Kleis process is refreshing" in str(refused)
    assert fake_oauth.refresh_calls == 1 and fake_oauth.reused_refresh_attempts == 0
    assert stored.token_version == row.token_version + 1
    assert Account.get_by_id(row.id).refresh_lease_owner is None
