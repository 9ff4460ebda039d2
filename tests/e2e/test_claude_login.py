"""Claude accounts: PKCE paste login, import of Claude Code and OpenCode files, refresh with rotation."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from core.exceptions import InvalidInput, ProviderError, ReauthRequired, TransientProviderError
from providers import oauth
from providers.claude import ClaudeProvider, login
from providers.claude.tokens import SCOPES
from providers.lifecycle import RefreshFailed, TokenManager
from store.accounts import AccountView, TokenSet, upsert_account
from store.models import Account, OAuthState
from tests.fakes.base import Reply
from tests.fakes.claude import ACCOUNT, CLAUDE_CLIENT_ID, MIN_STATE_LENGTH, ORGANIZATION, FakeClaudeAPI, pasted_code
from tests.fakes.oauth import FakeOAuth


@pytest.fixture
def cfg(config, claude_auth: FakeOAuth, claude_api: FakeClaudeAPI):
    return config.replace(
        claude_auth_base=claude_auth.url, claude_api_base=claude_api.url, claude_authorize_url=f"{claude_auth.url}/oauth/authorize"
    )


def consent(fake: FakeOAuth, authorize_url: str) -> str:
    """What the browser does: the user approves on the authorize page, which binds a code to the URL's challenge
    (and refuses a short state); returns the code part of the `code#state` the page shows."""
    assert authorize_url.startswith(f"{fake.url}/oauth/authorize?")
    return pasted_code(authorize_url).partition("#")[0]


def claude_rows() -> list[Account]:
    return list(Account.select().where(Account.provider == "claude"))


# -- login -----------------------------------------------------------------------------------------


def test_authorize_url_carries_the_claude_parameters(store, cfg) -> None:
    start = login.start_login(store, cfg)
    parts = urlsplit(start.authorize_url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == cfg.claude_authorize_url
    assert query == {
        "code": "true",
        "client_id": CLAUDE_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": f"{cfg.claude_auth_base}/oauth/code/callback",
        "scope": SCOPES,
        "code_challenge": query["code_challenge"],
        "code_challenge_method": "S256",
        "state": start.flow_id,
    }
    assert start.kind == "paste" and start.warning and "terms" in start.warning
    verifier, data = oauth.load_state(store, "claude", start.flow_id)
    assert query["state"] != verifier and query["code_challenge"] != verifier
    assert data == {"redirect_uri": query["redirect_uri"], "label": ""}


def test_state_and_verifier_are_32_random_bytes_as_base64url(store, cfg, claude_auth: FakeOAuth) -> None:
    """Anthropic's authorize page refuses a 16-byte state ("Invalid request format"); real clients send 43 characters."""
    starts = [login.start_login(store, cfg) for _ in range(3)]
    for start in starts:
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.authorize_url).query).items()}
        verifier, _ = oauth.load_state(store, "claude", start.flow_id)
        for value in (query["state"], verifier):
            assert len(value) == MIN_STATE_LENGTH and re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
            assert len(base64.urlsafe_b64decode(value + "=")) == 32
        assert httpx.get(start.authorize_url, trust_env=False).status_code == 200
    assert len({start.flow_id for start in starts}) == 3
    # the fake's page refuses what Kleis sent before: 16 bytes as 32 hex characters
    short = starts[0].authorize_url.replace(starts[0].flow_id, "0123456789abcdef0123456789abcdef")
    refused = httpx.get(short, trust_env=False)
    assert refused.status_code == 400 and "Invalid request format" in refused.text


@pytest.mark.parametrize("form", ["hash", "url", "query"])
def test_login_exchanges_the_pasted_code_with_pkce(store, cfg, claude_auth: FakeOAuth, form: str) -> None:
    start = login.start_login(store, cfg)
    code = consent(claude_auth, start.authorize_url)
    pasted = {
        "hash": f"{code}#{start.flow_id}",
        "url": f"{cfg.claude_auth_base}/oauth/code/callback?{urlencode({'code': code, 'state': start.flow_id})}",
        "query": f"code={code}&state={start.flow_id}",
    }[form]
    before = time.time()
    result = login.complete_login(store, cfg, start.flow_id, {"answer": pasted})
    assert result.status == "done" and result.created
    [row] = claude_rows()
    assert row.identity == ACCOUNT["uuid"] and row.email == ACCOUNT["email_address"]
    assert row.meta["organization_uuid"] == ORGANIZATION["uuid"] and row.meta["organization_name"] == ORGANIZATION["name"]
    view = AccountView.from_row(row, store.cipher)
    assert view.access_token in claude_auth.issued_access and view.refresh_token in claude_auth.live_refresh
    assert before + 3600 - 5 <= view.expires_at <= time.time() + 3600
    assert not any(view.access_token in str(v) or view.refresh_token in str(v) for v in row.meta.values())
    sent = claude_auth.last("/v1/oauth/token")
    assert sent.headers["content-type"].startswith("application/json")
    assert set(sent.json) == {"grant_type", "code", "state", "client_id", "redirect_uri", "code_verifier"}
    assert sent.json["state"] == start.flow_id and sent.json["grant_type"] == "authorization_code"
    assert OAuthState.get_or_none(OAuthState.state == start.flow_id) is None


def test_a_pasted_state_that_does_not_match_is_rejected(store, cfg, claude_auth: FakeOAuth) -> None:
    start = login.start_login(store, cfg)
    code = consent(claude_auth, start.authorize_url)
    with pytest.raises(InvalidInput, match="does not match"):
        login.complete_login(store, cfg, start.flow_id, {"answer": f"{code}#{oauth.new_state()}"})
    assert claude_rows() == [] and claude_auth.received("/v1/oauth/token") == []


def test_pkce_is_checked_by_the_authority(store, cfg, claude_auth: FakeOAuth) -> None:
    start = login.start_login(store, cfg)
    _, other_challenge = oauth.pkce_pair()
    code = claude_auth.authorize(
        challenge=other_challenge, redirect_uri=f"{cfg.claude_auth_base}/oauth/code/callback", client_id=CLAUDE_CLIENT_ID
    )
    with pytest.raises(ReauthRequired, match="PKCE"):
        login.complete_login(store, cfg, start.flow_id, {"answer": f"{code}#{start.flow_id}"})
    assert claude_rows() == []


def test_logging_in_twice_with_the_same_account_updates_one_row(store, cfg, claude_auth: FakeOAuth) -> None:
    tokens = []
    for expected_created in (True, False):
        start = login.start_login(store, cfg)
        result = login.complete_login(store, cfg, start.flow_id, {"answer": f"{consent(claude_auth, start.authorize_url)}#{start.flow_id}"})
        assert result.created is expected_created
        [row] = claude_rows()
        tokens.append(AccountView.from_row(row, store.cipher).access_token)
    assert tokens[0] != tokens[1]


def test_identity_comes_from_the_profile_when_the_token_answer_lacks_it(store, cfg, claude_auth: FakeOAuth) -> None:
    claude_auth.extra = {}
    start = login.start_login(store, cfg)
    login.complete_login(store, cfg, start.flow_id, {"answer": f"{consent(claude_auth, start.authorize_url)}#{start.flow_id}"})
    [row] = claude_rows()
    assert row.identity == ACCOUNT["uuid"] and row.email == ACCOUNT["email_address"]


# -- import -----------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_import_claude_code_credentials(store, cfg, claude_auth: FakeOAuth, claude_api: FakeClaudeAPI, tmp_path: Path) -> None:
    access, refresh = claude_auth.seed()
    expires_ms = int((time.time() + 7200) * 1000)
    path = write(
        tmp_path,
        ".credentials.json",
        {
            "claudeAiOauth": {
                "accessToken": access,
                "refreshToken": refresh,
                "expiresAt": expires_ms,
                "scopes": ["user:inference"],
                "subscriptionType": "max",
            }
        },
    )
    result = login.import_credentials(store, cfg, path)
    assert result.status == "done" and result.created
    [row] = claude_rows()
    view = AccountView.from_row(row, store.cipher)
    assert (view.access_token, view.refresh_token, view.expires_at) == (access, refresh, expires_ms / 1000)
    assert row.identity == ACCOUNT["uuid"] and row.meta["imported_from"] == "Claude Code"
    assert claude_auth.refresh_calls == 0 and claude_api.last("/api/oauth/profile").headers["authorization"] == f"Bearer {access}"


def test_import_opencode_auth_with_an_expired_token_refreshes_it(store, cfg, claude_auth: FakeOAuth, tmp_path: Path) -> None:
    access, refresh = claude_auth.seed()
    path = write(
        tmp_path,
        "auth.json",
        {
            "openai": {"type": "oauth", "access": "other", "refresh": "other", "expires": 1},
            "anthropic": {"type": "oauth", "access": access, "refresh": refresh, "expires": int((time.time() - 60) * 1000)},
        },
    )
    result = login.import_credentials(store, cfg, path)
    assert "OpenCode has to log in again" in result.message
    [row] = claude_rows()
    view = AccountView.from_row(row, store.cipher)
    assert refresh in claude_auth.used_refresh and view.refresh_token in claude_auth.live_refresh
    assert view.expires_at > time.time() + 3000 and row.identity == ACCOUNT["uuid"]


def test_import_then_login_is_one_account(store, cfg, claude_auth: FakeOAuth, tmp_path: Path) -> None:
    access, refresh = claude_auth.seed()
    path = write(
        tmp_path,
        "c.json",
        {"claudeAiOauth": {"accessToken": access, "refreshToken": refresh, "expiresAt": int(time.time() * 1000) + 3_600_000}},
    )
    login.import_credentials(store, cfg, path)
    start = login.start_login(store, cfg)
    assert not login.complete_login(
        store, cfg, start.flow_id, {"answer": f"{consent(claude_auth, start.authorize_url)}#{start.flow_id}"}
    ).created
    assert len(claude_rows()) == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object"),
        ({"other": {}}, "neither Claude Code"),
        ({"claudeAiOauth": {"accessToken": "sk-ant-oat01-a", "expiresAt": 1893456000000}}, "claudeAiOauth.refreshToken is missing"),
        ({"claudeAiOauth": {"accessToken": "sk-ant-oat01-a", "refreshToken": " ", "expiresAt": 1893456000000}}, "refreshToken is missing"),
        ({"claudeAiOauth": {"accessToken": "a", "refreshToken": "r", "expiresAt": "tomorrow"}}, "expiresAt is not a time"),
        ({"claudeAiOauth": {"accessToken": 5, "refreshToken": "r", "expiresAt": 1893456000000}}, "must be strings"),
        ({"anthropic": {"type": "api", "key": "sk-ant-api03-x"}}, "not an OAuth login"),
        ({"anthropic": {"type": "oauth", "access": "a", "refresh": "r"}}, "anthropic.expires is missing"),
    ],
)
def test_bad_or_partial_files_import_nothing(
    store, cfg, claude_auth: FakeOAuth, claude_api: FakeClaudeAPI, tmp_path: Path, content: object, fragment: str
) -> None:
    path = write(tmp_path, "creds.json", content)
    with pytest.raises(InvalidInput, match=fragment) as info:
        login.import_credentials(store, cfg, path)
    assert "sk-ant-" not in str(info.value)
    assert claude_rows() == [] and claude_auth.received() == [] and claude_api.received() == []


def test_missing_file_imports_nothing(store, cfg, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        login.import_credentials(store, cfg, tmp_path / "absent.json")
    assert claude_rows() == []


def test_import_of_a_dead_login_imports_nothing(store, cfg, claude_auth: FakeOAuth, tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.json", {"claudeAiOauth": {"accessToken": "sk-ant-oat01-old", "refreshToken": "sk-ant-ort01-old", "expiresAt": 1000}}
    )
    with pytest.raises(InvalidInput, match="no longer valid") as info:
        login.import_credentials(store, cfg, path)
    assert "sk-ant-ort01-old" not in str(info.value) and claude_rows() == []


def test_an_import_whose_identity_lookup_fails_after_refresh_keeps_the_rotated_login(
    store, cfg, claude_auth: FakeOAuth, claude_api: FakeClaudeAPI, tmp_path: Path
) -> None:
    """The refresh used up the file's refresh token: the new pair is kept, and running the import again finishes it
    without a second refresh (the file's token is dead by then)."""
    access, refresh = claude_auth.seed()
    path = write(tmp_path, "c.json", {"claudeAiOauth": {"accessToken": access, "refreshToken": refresh, "expiresAt": 1000}})
    identity_answer, claude_auth.extra = claude_auth.extra, {}  # the token answer names no account
    claude_api.enqueue("GET", "/api/oauth/profile", Reply(503, {"error": {"type": "overloaded_error"}}))
    with pytest.raises(TransientProviderError, match="run the same import again") as info:
        login.import_credentials(store, cfg, path)
    assert refresh not in str(info.value) and claude_rows() == []
    assert claude_auth.refresh_calls == 1 and refresh in claude_auth.used_refresh
    [kept] = OAuthState.select().where(OAuthState.provider == login.PENDING_PROVIDER)
    assert (
        refresh not in kept.state and refresh not in kept.flow_data and "sk-ant-ort" not in kept.flow_data
    )  # hashed key, encrypted tokens (a bare "ort" can occur in base64)
    assert oauth.login_for_bare_code("claude") is None  # not taken for a login in progress

    claude_auth.extra = identity_answer
    result = login.import_credentials(store, cfg, path)
    assert result.created and "has to log in again" in result.message
    [row] = claude_rows()
    view = AccountView.from_row(row, store.cipher)
    assert row.identity == ACCOUNT["uuid"] and view.refresh_token in claude_auth.live_refresh
    assert claude_auth.refresh_calls == 1  # the kept access token was still good: identified, not refreshed again
    assert OAuthState.select().where(OAuthState.provider == login.PENDING_PROVIDER).count() == 0


def test_a_refused_refresh_keeps_the_pair_a_concurrent_import_of_the_same_file_just_kept(
    store, cfg, claude_auth: FakeOAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports of one file race: the winner's refresh rotated the token and kept the new pair; the loser, which
    loaded nothing, sees "already used" and must not delete the winner's pair."""
    path = write(
        tmp_path, "c.json", {"claudeAiOauth": {"accessToken": "sk-ant-oat01-old", "refreshToken": "sk-ant-ort01-old", "expiresAt": 1000}}
    )
    winner = TokenSet("sk-ant-oat01-new", "sk-ant-ort01-new", time.time() + 3600)
    login._keep_pending(store, "sk-ant-ort01-old", winner)
    monkeypatch.setattr(login, "_load_pending", lambda store, refresh_token: None)  # the loser looked before it was kept
    with pytest.raises(InvalidInput, match="no longer valid"):
        login.import_credentials(store, cfg, path)
    monkeypatch.undo()
    assert login._load_pending(store, "sk-ant-ort01-old") == winner


# -- refresh ---------------------------------------------------------------------------------------


def stored_account(store, claude_auth: FakeOAuth, expires_in: float = 3600) -> AccountView:
    access, refresh = claude_auth.seed()
    row, _ = upsert_account(
        "claude", ACCOUNT["uuid"], TokenSet(access, refresh, time.time() + expires_in), store.cipher, email=ACCOUNT["email_address"]
    )
    return AccountView.from_row(row, store.cipher)


async def refresh_once(cfg, account: AccountView) -> TokenSet:
    async with httpx.AsyncClient(timeout=10) as http:
        return await ClaudeProvider(cfg).refresh(account, http)


def test_refresh_rotates_and_sends_no_scope(store, cfg, claude_auth: FakeOAuth) -> None:
    account = stored_account(store, claude_auth)
    tokens = asyncio.run(refresh_once(cfg, account))
    assert tokens.access_token in claude_auth.issued_access and tokens.access_token != account.access_token
    assert tokens.refresh_token in claude_auth.live_refresh and account.refresh_token in claude_auth.used_refresh
    assert abs(tokens.expires_at - (time.time() + 3600)) < 10
    assert tokens.metadata["account_uuid"] == ACCOUNT["uuid"] and tokens.metadata["email"] == ACCOUNT["email_address"]
    sent = claude_auth.last("/v1/oauth/token")
    assert sent.json == {"grant_type": "refresh_token", "refresh_token": account.refresh_token, "client_id": CLAUDE_CLIENT_ID}


def test_refresh_with_a_used_token_needs_reauth(store, cfg, claude_auth: FakeOAuth) -> None:
    account = stored_account(store, claude_auth)
    asyncio.run(refresh_once(cfg, account))
    with pytest.raises(ReauthRequired, match="invalid_grant") as info:
        asyncio.run(refresh_once(cfg, account))
    assert account.refresh_token not in str(info.value)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(503, {"error": "temporarily_unavailable"}),
        Reply(429, {}),
        Reply(400, {"error": "invalid_request", "error_description": "malformed"}),
        Reply(200, "not json"),
    ],
)
def test_refresh_failures_that_keep_the_tokens_are_transient(store, cfg, claude_auth: FakeOAuth, reply: Reply) -> None:
    account = stored_account(store, claude_auth)
    claude_auth.fail_next.append(reply)
    with pytest.raises(TransientProviderError):
        asyncio.run(refresh_once(cfg, account))
    assert account.refresh_token in claude_auth.live_refresh


def test_refresh_network_error_is_transient_and_names_no_token(store, cfg, claude_auth: FakeOAuth) -> None:
    account = stored_account(store, claude_auth)
    with pytest.raises(TransientProviderError) as info:
        asyncio.run(refresh_once(cfg.replace(claude_auth_base="http://127.0.0.1:9"), account))
    assert account.refresh_token not in str(info.value) and not isinstance(info.value, ReauthRequired)


def test_lifecycle_commits_the_rotated_pair_and_marks_a_dead_login(store, cfg, claude_auth: FakeOAuth) -> None:
    account = stored_account(store, claude_auth, expires_in=10)

    async def run(force: bool) -> AccountView:
        async with httpx.AsyncClient(timeout=10) as http:
            return await TokenManager(store, {"claude": ClaudeProvider(cfg)}, http).refresh(account.id, force=force)

    fresh = asyncio.run(run(False))
    assert fresh.refresh_token in claude_auth.live_refresh and fresh.token_version == account.token_version + 1
    assert fresh.metadata["organization_uuid"] == ORGANIZATION["uuid"]
    claude_auth.live_refresh.clear()  # the authority revokes the login
    with pytest.raises(RefreshFailed) as info:
        asyncio.run(run(True))
    assert info.value.reauth
    row = Account.get_by_id(account.id)
    assert row.status == "needs_reauth" and "invalid_grant" in row.status_reason


def test_login_errors_are_provider_errors_without_secrets(store, cfg, claude_auth: FakeOAuth) -> None:
    start = login.start_login(store, cfg)
    with pytest.raises(ProviderError) as info:
        login.complete_login(store, cfg, start.flow_id, {"answer": f"made-up-code#{start.flow_id}"})
    assert "made-up-code" not in str(info.value)
    assert OAuthState.get_or_none(OAuthState.state == start.flow_id) is not None  # the user may paste again
