"""The Copilot token exchange and its refresh, the refresh schedule, the lifecycle's reaction, and /models.
Here the parts that need a listener; the rest: tests/unit/test_copilot_tokens.py."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from core.exceptions import ProviderError, ReauthRequired, TransientProviderError
from providers.copilot import CopilotProvider, login
from providers.lifecycle import RefreshFailed, TokenManager
from store.accounts import AccountView
from store.models import Account
from tests.fakes.base import Reply
from tests.fakes.github import OPENCODE_CLIENT_ID
from tests.support.accounts import account_view


def refresh(provider: CopilotProvider, account: AccountView):
    async def run():
        async with httpx.AsyncClient() as http:
            return await provider.refresh(account, http)

    return asyncio.run(run())


def imported(store, config, github, **kwargs) -> AccountView:
    result = login.import_credentials(store, config, github_token=github.seed_github_token(**kwargs))
    return account_view(store, result.account_id)


def test_exchange_sends_the_github_token_and_editor_headers(store, copilot_config, github) -> None:
    account = imported(store, copilot_config, github)
    seen = github.last("/copilot_internal/v2/token")
    assert seen.headers["authorization"] == f"token {account.refresh_token}"
    assert seen.headers["editor-version"] == "vscode/1.126.0" and seen.headers["editor-plugin-version"] == "copilot-chat/0.54.0"
    assert seen.headers["user-agent"] == "GitHubCopilotChat/0.54.0" and seen.headers["x-github-api-version"] == "2025-04-01"
    assert account.expires_at == pytest.approx(time.time() + 1800, abs=5)
    assert account.metadata["refresh_in"] == 1500
    assert account.metadata["refresh_at"] == pytest.approx(account.metadata["issued_at"] + 1440)


def test_refresh_returns_a_new_copilot_token_and_keeps_the_github_token(store, copilot_config, github) -> None:
    provider = CopilotProvider(copilot_config)
    account = imported(store, copilot_config, github)
    github.expire_copilot_tokens()
    assert account.access_token not in github.api_tokens  # the fake API now refuses the stored token
    renewed = refresh(provider, account)
    assert renewed.access_token != account.access_token and renewed.access_token in github.api_tokens
    assert renewed.refresh_token is None  # None keeps the stored GitHub token
    assert renewed.metadata["mode"] == "exchange" and renewed.expires_at > time.time() + 1700


def test_no_token_ever_lands_in_metadata(store, copilot_config, github) -> None:
    account = imported(store, copilot_config, github)
    renewed = refresh(CopilotProvider(copilot_config), account)
    stored = Account.get_by_id(account.id).metadata
    for secret in (account.access_token, account.refresh_token, renewed.access_token):
        assert secret not in stored and secret not in json.dumps(renewed.metadata)


def test_a_dead_github_token_needs_a_new_login(store, copilot_config, github) -> None:
    account = imported(store, copilot_config, github)
    github.revoke(account.refresh_token)
    with pytest.raises(ReauthRequired, match="401") as info:
        refresh(CopilotProvider(copilot_config), account)
    assert account.refresh_token not in str(info.value)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(503, {"message": "unavailable"}), TransientProviderError),
        (Reply(429, {"message": "slow"}, {"retry-after": "30"}), TransientProviderError),
        (Reply(403, {"message": "API rate limit exceeded"}, {"x-ratelimit-remaining": "0"}), TransientProviderError),
        (Reply(403, {"message": "Resource not accessible by integration"}), ReauthRequired),
        (Reply(200, {"nothing": True}), TransientProviderError),
    ],
)
def test_exchange_failures_map_to_what_they_mean(store, copilot_config, github, reply: Reply, kind: type) -> None:
    account = imported(store, copilot_config, github)
    github.enqueue("GET", "/copilot_internal/v2/token", reply)
    with pytest.raises(ProviderError) as info:
        refresh(CopilotProvider(copilot_config), account)
    assert type(info.value) is kind


def test_direct_mode_refresh_checks_the_github_token(store, copilot_config, github) -> None:
    config = copilot_config.replace(copilot_client_id=OPENCODE_CLIENT_ID)
    account = imported(store, config, github, client_id=OPENCODE_CLIENT_ID)
    provider = CopilotProvider(config)
    assert account.metadata["mode"] == "direct" and not provider.needs_refresh(account, now=time.time() + 10**7)
    again = refresh(provider, account)
    assert again.access_token == account.refresh_token and again.expires_at is None
    github.revoke(account.refresh_token)
    with pytest.raises(ReauthRequired):
        refresh(provider, account)


def test_needs_refresh_follows_refresh_in(store, copilot_config, github) -> None:
    provider = CopilotProvider(copilot_config)
    account = imported(store, copilot_config, github)
    issued = account.metadata["issued_at"]
    assert not provider.needs_refresh(account, now=issued + 1400)
    assert provider.needs_refresh(account, now=issued + 1441)  # refresh_in 1500 - 60 s margin
    assert provider.needs_refresh(account, now=account.expires_at + 1)


def test_the_lifecycle_marks_needs_reauth_on_a_401_exchange(store, copilot_config, github) -> None:
    provider = CopilotProvider(copilot_config)
    account = imported(store, copilot_config, github)
    github.revoke(account.refresh_token)

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            manager = TokenManager(store, {"copilot": provider}, http)
            with pytest.raises(RefreshFailed) as info:
                await manager.refresh(account.id, force=True)
            assert info.value.reauth

    asyncio.run(run())
    row = Account.get_by_id(account.id)
    assert row.status == "needs_reauth" and "401" in row.status_reason and account.refresh_token not in row.status_reason


def test_the_lifecycle_refreshes_and_commits(store, copilot_config, github) -> None:
    provider = CopilotProvider(copilot_config)
    account = imported(store, copilot_config, github)

    async def run() -> AccountView:
        async with httpx.AsyncClient() as http:
            return await TokenManager(store, {"copilot": provider}, http).refresh(account.id, force=True)

    fresh = asyncio.run(run())
    assert fresh.access_token != account.access_token and fresh.refresh_token == account.refresh_token
    assert fresh.token_version == account.token_version + 1


def test_list_models_filters_and_caches(store, copilot_config, github, copilot_api) -> None:
    provider = CopilotProvider(copilot_config)
    account = imported(store, copilot_config, github)

    async def run() -> tuple[list, list]:
        async with httpx.AsyncClient() as http:
            return await provider.list_models(account, http), await provider.list_models(account, http)

    first, second = asyncio.run(run())
    assert [m["id"] for m in first] == ["gpt-4.1", "gpt-5-mini", "gpt-5.1-codex", "claude-sonnet-4.5"]
    assert second == first and len(copilot_api.received("/models")) == 1
    seen = copilot_api.last("/models")
    assert seen.headers["authorization"] == f"Bearer {account.access_token}" and seen.headers["editor-version"]
    assert set(first[3]) >= {"id", "name", "capabilities", "supported_endpoints", "vendor"}
    assert provider.supported_endpoints("gpt-5.1-codex") == ["/responses"] and provider.supported_endpoints("nope") is None


def test_list_models_with_a_stale_token_says_so(store, copilot_config, github, copilot_api) -> None:
    provider = CopilotProvider(copilot_config)
    account = imported(store, copilot_config, github)
    github.expire_copilot_tokens()

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            await provider.list_models(account, http)

    with pytest.raises(ProviderError, match="401") as info:
        asyncio.run(run())
    assert account.access_token not in str(info.value)


@pytest.mark.parametrize(
    ("status", "headers", "kind", "account_wide"),
    [
        (401, {}, "auth", True),
        (429, {"retry-after": "30"}, "rate_limit", True),
        (500, {}, "server", True),
        (400, {}, "request", False),
        (200, {}, "ok", True),
    ],
)
def test_classify(copilot_config, status: int, headers: dict, kind: str, account_wide: bool) -> None:
    signal = CopilotProvider(copilot_config).classify(status, headers, {"error": {"message": "x"}})
    assert (signal.kind, signal.account_wide) == (kind, account_wide)
    if status == 429:
        assert signal.reset_at == pytest.approx(time.time() + 30, abs=2)
