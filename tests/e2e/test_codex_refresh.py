"""Codex token refresh: form-encoded, rotating refresh tokens persisted, dead ones → re-login, outages → retry later."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from core.exceptions import ReauthRequired, TransientProviderError
from providers.codex import CodexProvider
from providers.lifecycle import TokenManager
from store.accounts import TokenSet, load_views, upsert_account
from store.models import Account
from tests.fakes.base import Reply
from tests.fakes.codex_auth import ChatGPTAccount, FakeCodexAuth


@pytest.fixture
def provider(config, codex_auth) -> CodexProvider:
    return CodexProvider(config.replace(codex_auth_base=codex_auth.url))


def seeded(store, codex_auth: FakeCodexAuth, expires_in: float = 3600):
    access, refresh = codex_auth.seed()
    metadata = {"account_id": codex_auth.account.account_id, "email": codex_auth.account.email, "plan_type": "plus"}
    upsert_account(
        "codex",
        f"{codex_auth.account.account_id}:{codex_auth.account.user_id}",
        TokenSet(access, refresh, time.time() + expires_in, metadata),
        store.cipher,
        email=codex_auth.account.email,
    )
    return load_views(store.cipher)[0]


def refresh(provider: CodexProvider, view):
    async def run() -> TokenSet:
        async with httpx.AsyncClient() as http:
            return await provider.refresh(view, http)

    return asyncio.run(run())


def test_refresh_is_form_encoded_and_rotates(store, provider, codex_auth) -> None:
    view = seeded(store, codex_auth)
    tokens = refresh(provider, view)
    sent = codex_auth.last("/oauth/token")
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert sent.form == {"grant_type": "refresh_token", "refresh_token": view.refresh_token, "client_id": "app_EMoamEEZ73f0CkXaXp7hrann"}
    assert tokens.refresh_token and tokens.refresh_token != view.refresh_token and tokens.refresh_token in codex_auth.live_refresh
    assert tokens.access_token in codex_auth.issued_access and tokens.access_token != view.access_token
    assert 3500 < tokens.expires_at - time.time() <= 3600
    assert tokens.metadata == {"account_id": "acc-1111-aaaa", "user_id": "user-alice", "email": "alice@example.test", "plan_type": "plus"}
    assert not any("eyJ" in str(value) for value in tokens.metadata.values())  # the id token itself is never kept


def test_a_used_refresh_token_means_a_new_login(store, provider, codex_auth) -> None:
    view = seeded(store, codex_auth)
    refresh(provider, view)
    with pytest.raises(ReauthRequired, match="already used") as caught:
        refresh(provider, view)  # the old, rotated-away token
    assert view.refresh_token not in str(caught.value)


def test_server_errors_and_network_errors_are_transient(store, provider, codex_auth, config) -> None:
    view = seeded(store, codex_auth)
    codex_auth.fail_next.append(Reply(503, {"error": "temporarily_unavailable"}))
    with pytest.raises(TransientProviderError):
        refresh(provider, view)
    closed = CodexProvider(config)  # conftest points every upstream at a closed port
    with pytest.raises(TransientProviderError, match="unreachable"):
        refresh(closed, view)
    assert refresh(provider, view).refresh_token  # the token survived both failures


def test_without_id_token_or_expires_in_the_access_token_tells(store, provider, codex_auth) -> None:
    view = seeded(store, codex_auth)
    codex_auth.send_id_token = False
    codex_auth.expires_in = 900
    tokens = refresh(provider, view)
    assert tokens.metadata["account_id"] == "acc-1111-aaaa" and tokens.metadata["email"] == "alice@example.test"
    assert 800 < tokens.expires_at - time.time() <= 900


def test_the_token_manager_persists_the_rotated_pair(store, provider, codex_auth) -> None:
    view = seeded(store, codex_auth, expires_in=10)  # inside the refresh skew
    codex_auth.account = ChatGPTAccount(plan_type="pro")  # the plan changed since login

    async def run():
        async with httpx.AsyncClient() as http:
            manager = TokenManager(store, {"codex": provider}, http)
            assert await manager.fresh(view) is view  # still valid: used at once, refreshed in the background
            (refreshing,) = manager.pending()
            return await refreshing

    fresh = asyncio.run(run())
    assert fresh.token_version == view.token_version + 1 and fresh.refresh_token in codex_auth.live_refresh
    assert fresh.metadata["plan_type"] == "pro" and fresh.metadata["account_id"] == "acc-1111-aaaa"
    assert Account.get().status == "active"


def test_a_dead_refresh_token_marks_the_account(store, provider, codex_auth) -> None:
    view = seeded(store, codex_auth, expires_in=-10)
    codex_auth.live_refresh.discard(view.refresh_token)
    codex_auth.used_refresh.add(view.refresh_token)

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            await TokenManager(store, {"codex": provider}, http).fresh(view)

    with pytest.raises(Exception, match="needs a new login"):
        asyncio.run(run())
    row = Account.get()
    assert row.status == "needs_reauth" and "already used" in row.status_reason and view.refresh_token not in row.status_reason
