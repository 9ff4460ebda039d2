"""Codex logins against the fake ChatGPT auth host: browser PKCE with a pasted callback URL, device flow, import."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.logins import codex as codex_cli
from cli.logins.codex_callback import CallbackListener
from core.exceptions import InvalidInput, ProviderError
from providers.codex import login
from store.accounts import load_views
from store.models import Account, OAuthState
from tests.fakes.base import Reply
from tests.fakes.codex_auth import CODEX_CLIENT_ID, ChatGPTAccount, FakeCodexAuth, make_jwt


@pytest.fixture
def cfg(config, codex_auth):
    return config.replace(codex_auth_base=codex_auth.url)


# -- browser flow ---------------------------------------------------------------------------------


def test_authorize_url_has_every_parameter(store, cfg, codex_auth) -> None:
    start = login.start_login(store, cfg)
    parts = urlsplit(start.authorize_url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{codex_auth.url}/oauth/authorize"
    assert query == {
        "response_type": "code",
        "client_id": CODEX_CLIENT_ID,
        "redirect_uri": "http://localhost:1455/auth/callback",
        "scope": "openid profile email offline_access",
        "code_challenge": query["code_challenge"],
        "code_challenge_method": "S256",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": start.flow_id,
        "originator": cfg.codex_originator,
    }
    assert start.kind == "callback" and start.warning and "localhost:1455" in start.instructions
    row = OAuthState.get(OAuthState.state == start.flow_id)
    assert row.provider == "codex" and row.verifier and query["code_challenge"] not in row.verifier  # verifier kept encrypted


def test_pasted_callback_logs_in_with_pkce_and_stores_the_account(store, cfg, codex_auth) -> None:
    start = login.start_login(store, cfg, label="work")
    result = login.complete_login(store, cfg, start.flow_id, {"callback_url": codex_auth.consent(start.authorize_url)})
    assert result.status == "done" and result.created and "alice@example.test" in result.message
    exchange = codex_auth.last("/oauth/token")
    assert exchange.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert set(exchange.form) == {"grant_type", "code", "redirect_uri", "client_id", "code_verifier"}
    view = load_views(store.cipher)[0]
    assert (view.provider, view.identity, view.email, view.label) == ("codex", "acc-1111-aaaa:user-alice", "alice@example.test", "work")
    assert view.metadata == {"account_id": "acc-1111-aaaa", "user_id": "user-alice", "email": "alice@example.test", "plan_type": "plus"}
    assert view.access_token in codex_auth.issued_access and view.refresh_token in codex_auth.live_refresh
    assert view.expires_at and 3500 < view.expires_at - time.time() <= 3600
    row = Account.get()
    assert view.access_token not in row.access_token and view.refresh_token not in row.refresh_token and "eyJ" not in row.metadata
    assert OAuthState.get_or_none(OAuthState.state == start.flow_id) is None  # the login is used up


def test_a_code_for_another_pkce_challenge_is_refused(store, cfg, codex_auth) -> None:
    start = login.start_login(store, cfg)
    other = login.start_login(store, cfg)  # its challenge belongs to another verifier
    stolen = codex_auth.consent(other.authorize_url, state=start.flow_id)
    with pytest.raises(ProviderError, match="PKCE verification failed") as caught:
        login.complete_login(store, cfg, start.flow_id, {"callback_url": stolen})
    assert "code=" not in str(caught.value) and Account.select().count() == 0


def test_a_state_mismatch_is_refused_before_any_exchange(store, cfg, codex_auth) -> None:
    start = login.start_login(store, cfg)
    forged = codex_auth.consent(start.authorize_url, state="forged-state")
    with pytest.raises(InvalidInput, match="does not match"):
        login.complete_login(store, cfg, start.flow_id, {"callback_url": forged})
    assert codex_auth.received("/oauth/token") == [] and Account.select().count() == 0


def test_unknown_and_expired_logins_and_empty_answers(store, cfg, codex_auth) -> None:
    with pytest.raises(InvalidInput, match="unknown"):
        login.complete_login(store, cfg, "never-issued", {"callback_url": "http://localhost:1455/auth/callback?code=c&state=never-issued"})
    start = login.start_login(store, cfg)
    with pytest.raises(InvalidInput, match="callback_url"):
        login.complete_login(store, cfg, start.flow_id, {})
    OAuthState.update(expires_at=time.time() - 1).where(OAuthState.state == start.flow_id).execute()
    with pytest.raises(InvalidInput, match="expired"):
        login.complete_login(store, cfg, start.flow_id, {"callback_url": codex_auth.consent(start.authorize_url)})


def test_the_same_account_twice_updates_one_row_and_another_adds_one(store, cfg, codex_auth) -> None:
    for _ in range(2):
        start = login.start_login(store, cfg)
        result = login.complete_login(store, cfg, start.flow_id, {"callback_url": codex_auth.consent(start.authorize_url)})
    assert not result.created and Account.select().count() == 1 and Account.get().token_version == 2
    codex_auth.account = ChatGPTAccount("acc-1111-aaaa", "user-bob", "bob@example.test", "team")  # same workspace, another member
    start = login.start_login(store, cfg)
    assert login.complete_login(store, cfg, start.flow_id, {"callback_url": codex_auth.consent(start.authorize_url)}).created
    assert sorted(a.identity for a in Account.select()) == ["acc-1111-aaaa:user-alice", "acc-1111-aaaa:user-bob"]


def test_tokens_naming_no_account_are_refused(store, cfg, codex_auth) -> None:
    codex_auth.account = ChatGPTAccount("", "", "x@example.test")
    codex_auth.account.auth_claims = lambda: {}
    start = login.start_login(store, cfg)
    with pytest.raises(ProviderError, match="no chatgpt_account_id"):
        login.complete_login(store, cfg, start.flow_id, {"callback_url": codex_auth.consent(start.authorize_url)})
    assert Account.select().count() == 0


def test_the_local_listener_catches_the_callback(store, cfg, codex_auth) -> None:
    import httpx

    caught: list[str] = []
    listener = CallbackListener(caught.append, port=0)
    assert listener.start()
    try:
        start = login.start_login(store, cfg)
        pasted = codex_auth.consent(start.authorize_url)
        page = httpx.get(pasted.replace("localhost:1455", f"127.0.0.1:{listener.port}"))
        assert page.status_code == 200 and "close this tab" in page.text
        assert httpx.get(f"http://127.0.0.1:{listener.port}/favicon.ico").status_code == 404
    finally:
        listener.stop()
    assert len(caught) == 1 and login.complete_login(store, cfg, start.flow_id, {"callback_url": caught[0]}).status == "done"


def test_a_taken_port_means_no_listener() -> None:
    first = CallbackListener(lambda url: None, port=0)
    assert first.start()
    try:
        assert not CallbackListener(lambda url: None, port=first.port).start()
    finally:
        first.stop()


# -- device flow ------------------------------------------------------------------------------------


def test_device_flow_pending_then_done(store, cfg, codex_auth) -> None:
    start = login.start_login(store, cfg, device=True)
    assert start.kind == "device" and start.verification_uri == f"{codex_auth.url}/codex/device" and start.interval == 1.0
    assert start.user_code in codex_auth.devices[next(iter(codex_auth.devices))].user_code and start.user_code in start.instructions
    assert codex_auth.last("/api/accounts/deviceauth/usercode").json == {"client_id": CODEX_CLIENT_ID}
    pending = login.complete_login(store, cfg, start.flow_id, {})
    assert pending.status == "pending" and pending.interval == 1.0 and Account.select().count() == 0
    done = login.complete_login(store, cfg, start.flow_id, {})
    assert done.status == "done" and done.created
    poll = codex_auth.last("/api/accounts/deviceauth/token").json
    assert set(poll) == {"device_auth_id", "user_code"} and poll["user_code"] == start.user_code
    exchange = codex_auth.last("/oauth/token").form
    assert exchange["redirect_uri"] == f"{codex_auth.url}/deviceauth/callback" and exchange["grant_type"] == "authorization_code"
    assert load_views(store.cipher)[0].identity == "acc-1111-aaaa:user-alice"


def test_device_flow_slows_down_on_429(store, cfg, codex_auth) -> None:
    start = login.start_login(store, cfg, device=True)
    codex_auth.enqueue("POST", "/api/accounts/deviceauth/token", Reply(429, {"error": {"message": "slow down"}}))
    slowed = login.complete_login(store, cfg, start.flow_id, {})
    assert slowed.status == "pending" and slowed.interval == 6.0
    assert login.complete_login(store, cfg, start.flow_id, {}).interval == 6.0  # remembered in the login state


def test_device_login_times_out_cleanly(store, cfg, codex_auth) -> None:
    codex_auth.approve_after = None  # nobody approves
    began = time.monotonic()
    with pytest.raises(InvalidInput, match="timed out after 0.5s"):
        codex_cli.device_login(store, cfg, 0.5, "")
    assert time.monotonic() - began < 3 and Account.select().count() == 0
    assert OAuthState.select().where(OAuthState.provider == "codex").count() == 0  # the abandoned login is gone


def test_device_login_loop_completes_when_approved(store, cfg, codex_auth) -> None:
    codex_auth.approve_after = None
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            codex_auth.approve(next(iter(codex_auth.devices.values())).user_code)

    result = codex_cli.device_login(store, cfg, 60, "ci", sleep=sleep)
    assert result.status == "done" and naps == [1.0, 1.0] and Account.get().label == "ci"


def test_device_flow_not_enabled(store, cfg, codex_auth) -> None:
    codex_auth.enqueue("POST", "/api/accounts/deviceauth/usercode", Reply(404, {"detail": "Not Found"}))
    with pytest.raises(ProviderError, match="not enabled"):
        login.start_login(store, cfg, device=True)


# -- import -------------------------------------------------------------------------------------------


def opencode_file(codex_auth: FakeCodexAuth, expires_ms: int) -> dict:
    access, refresh = codex_auth.seed()
    return {
        "anthropic": {"type": "oauth", "access": "sk-ant-oat01-x", "refresh": "sk-ant-ort01-y", "expires": 1},
        "openai": {
            "type": "oauth",
            "access": access,
            "refresh": refresh,
            "expires": expires_ms,
            "accountId": codex_auth.account.account_id,
        },
    }


def test_import_codex_cli_auth_json(store, cfg, codex_auth, tmp_path: Path) -> None:
    data = codex_auth.codex_cli_auth_json()
    path = tmp_path / "auth.json"
    path.write_text(json.dumps(data))
    result = login.import_credentials(store, cfg, path)
    assert result.status == "done" and result.created
    view = load_views(store.cipher)[0]
    assert view.identity == "acc-1111-aaaa:user-alice" and view.email == "alice@example.test"
    assert view.access_token == data["tokens"]["access_token"] and view.refresh_token == data["tokens"]["refresh_token"]
    assert view.metadata["imported_from"] == "codex-cli" and view.metadata["plan_type"] == "plus"
    assert view.expires_at and view.expires_at > time.time() + 3000  # the access token's exp claim


def test_import_opencode_auth_json_and_the_same_account_again(store, cfg, codex_auth, tmp_path: Path) -> None:
    expires_ms = int((time.time() + 1800) * 1000)
    path = tmp_path / "opencode.json"
    path.write_text(json.dumps(opencode_file(codex_auth, expires_ms)))
    assert login.import_credentials(store, cfg, str(path)).created
    view = load_views(store.cipher)[0]
    assert abs(view.expires_at - expires_ms / 1000) < 1 and view.metadata["imported_from"] == "opencode"
    again = login.import_credentials(store, cfg, content=json.dumps(codex_auth.codex_cli_auth_json()))  # the admin's upload path
    assert not again.created and Account.select().count() == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"tokens": {"access_token": "SECRET-access"}}', "tokens.refresh_token"),
        ('{"tokens": {"refresh_token": "SECRET-refresh"}}', "tokens.access_token"),
        ('{"OPENAI_API_KEY": "sk-SECRET", "tokens": null}', "API key"),
        ('{"openai": {"type": "api", "key": "sk-SECRET"}}', "not an OAuth login"),
        ('{"openai": {"type": "oauth", "access": "SECRET-opaque", "refresh": "SECRET-r"}}', "no ChatGPT account id"),
        ('{"openai": {"type": "oauth", "refresh": "SECRET-r"}}', "openai.access"),
        ('{"something": "else"}', "expected Codex CLI"),
    ],
)
def test_bad_or_partial_files_import_nothing(store, cfg, tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "auth.json"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=fragment) as caught:
        login.import_credentials(store, cfg, path)
    assert "SECRET" not in str(caught.value)
    assert Account.select().count() == 0


def test_import_of_a_missing_file_or_no_path(store, cfg, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no file at"):
        login.import_credentials(store, cfg, tmp_path / "missing.json")
    with pytest.raises(InvalidInput, match="auth.json"):
        login.import_credentials(store, cfg)


def test_an_opencode_access_token_alone_names_the_account(store, cfg) -> None:
    access = make_jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acc-oc"}, "exp": int(time.time()) + 100})
    login.import_credentials(store, cfg, content={"openai": {"type": "oauth", "access": access, "refresh": "r-1", "expires": 0}})
    assert Account.get().identity == "acc-oc"
