"""Test providers for the admin, one per login kind, speaking the login contract against a fake OAuth authority.

- `PasteProvider` ("claude"): PKCE authorize link, the user pastes `code#state` (like Claude).
- `CallbackProvider` ("codex"): PKCE authorize link, the user pastes the callback URL; `device=True` starts a
  device flow instead (like Codex).
- `DeviceProvider` ("copilot"): a device code; `complete_login` polls once, pending until approved (like Copilot).
All exchange real HTTP with `LoginAuthority`, a FakeOAuth that also serves an authorize page and a device flow.
"""

from __future__ import annotations

import html
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from core.exceptions import InvalidInput, ReauthRequired
from core.protocol import Protocol
from providers import oauth
from providers.base import Provider
from store.accounts import AccountView, TokenSet
from tests.fakes.base import Recorded, Reply
from tests.fakes.oauth import FakeOAuth

CLIENT_ID = "test-client"
PASTE_REDIRECT = "https://console.example.test/oauth/code/callback"
CALLBACK_REDIRECT = "http://localhost:1455/auth/callback"
TERMS = "TEST TERMS: this provider's terms restrict third-party use."


class LoginAuthority(FakeOAuth):
    """FakeOAuth plus a consent page (GET /oauth/authorize) and an RFC 8628 device flow."""

    def __init__(self) -> None:
        super().__init__()
        self.identity = ("user-1", "ada@example.test")
        self.extra_for_grant = lambda grant, params: {"account": {"id": self.identity[0], "email": self.identity[1]}}
        self.devices: dict[str, dict[str, Any]] = {}  # device_code -> {user_code, approved}
        self.route("GET", "/oauth/authorize", self.consent_page)
        self.route("POST", "/device/code", self.device_code)
        self.route("POST", "/device/token", self.device_token)

    def consent_page(self, request: Recorded) -> Reply:
        """What the user sees after approving: the code#state to paste (or, for callbacks, where they land)."""
        query = request.query
        code = self.authorize(challenge=query["code_challenge"], redirect_uri=query["redirect_uri"], client_id=query.get("client_id"))
        if query["redirect_uri"] == CALLBACK_REDIRECT:
            return Reply(302, "", {"location": f"{CALLBACK_REDIRECT}?code={code}&state={query['state']}"})
        pasted = f"{html.escape(code)}#{html.escape(query['state'])}"
        body = f"<!doctype html><title>Approved</title><p>Paste this code:</p><code id='pasted-code'>{pasted}</code>"
        return Reply(200, body.encode(), {"content-type": "text/html"})

    def device_code(self, request: Recorded) -> Reply:
        device_code, user_code = "dev-" + secrets.token_hex(8), f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        self.devices[device_code] = {"user_code": user_code, "approved": False}
        return Reply(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": f"{self.url}/device",
                "interval": 1,
                "expires_in": 600,
            },
        )

    def approve(self, user_code: str) -> None:
        for device in self.devices.values():
            if device["user_code"] == user_code:
                device["approved"] = True
                return
        raise AssertionError(f"no device login with user code {user_code}")

    def device_token(self, request: Recorded) -> Reply:
        device = self.devices.get((request.json or {}).get("device_code", ""))
        if device is None:
            return Reply(400, {"error": "expired_token"})
        if not device["approved"]:
            return Reply(400, {"error": "authorization_pending"})
        _, _, answer = self._issue()
        return Reply(200, {**answer, "account": {"id": self.identity[0], "email": self.identity[1]}})


def _authority() -> LoginAuthority:
    assert TestProvider.authority is not None, "start a LoginAuthority and set TestProvider.authority"
    return TestProvider.authority


def _finish(store, provider: str, answer: dict[str, Any], label: str = "") -> oauth.LoginResult:
    account = answer["account"]
    tokens = TokenSet(
        answer["access_token"],
        answer["refresh_token"],
        time.time() + float(answer["expires_in"]),
        {"plan": "test", "id_token": "must-not-show"},
    )
    return oauth.finish(store, provider, account["id"], tokens, email=account["email"], label=label)


def _exchange(code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
    response = httpx.post(
        f"{_authority().url}/v1/oauth/token",
        json={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
        },
    )
    if response.status_code != 200:
        raise oauth.token_error(response, "test login")
    return response.json()


class PkceLogin:
    """A PKCE login whose answer is pasted (`code#state`) or a callback URL."""

    def __init__(self, provider: str, kind: str, redirect_uri: str, field: str) -> None:
        self.provider, self.kind, self.redirect_uri, self.field = provider, kind, redirect_uri, field

    def start_login(self, store, config, *, device: bool = False, label: str = "", **options: Any) -> oauth.LoginStart:
        if device:
            return DEVICE.start_for(self.provider, store, label)
        verifier, challenge = oauth.pkce_pair()
        state = oauth.new_state()
        expires_at = oauth.save_state(store, self.provider, state, verifier, {"label": label})
        query = urlencode(
            {
                "client_id": CLIENT_ID,
                "redirect_uri": self.redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
            }
        )
        return oauth.LoginStart(
            self.provider,
            state,
            self.kind,
            expires_at,
            authorize_url=f"{_authority().url}/oauth/authorize?{query}",
            instructions="Open the link, approve, and paste what you get.",
            warning=TERMS,
        )

    def complete_login(self, store, config, flow_id: str, answer: dict[str, Any]) -> oauth.LoginResult:
        verifier, data = oauth.load_state(store, self.provider, flow_id)
        if data.get("device_code"):
            return DEVICE.complete_login(store, config, flow_id, answer, provider=self.provider)
        pasted = answer.get(self.field)
        if not isinstance(pasted, str) or not pasted.strip():
            raise InvalidInput(f"missing field: {self.field}")
        code, state = oauth.parse_pasted(pasted)
        oauth.check_state(flow_id, state)
        result = _finish(store, self.provider, _exchange(code, verifier, self.redirect_uri), data.get("label", ""))
        oauth.drop_state(flow_id)
        return result


class DeviceLogin:
    """A device-code login: `complete_login` asks the authority once and answers pending until approved."""

    def start_login(self, store, config, **options: Any) -> oauth.LoginStart:
        return self.start_for("copilot", store, options.get("label", ""))

    def start_for(self, provider: str, store, label: str) -> oauth.LoginStart:
        data = httpx.post(f"{_authority().url}/device/code", json={"client_id": CLIENT_ID}).json()
        flow_id = oauth.new_state()
        expires_at = oauth.save_state(
            store, provider, flow_id, data["device_code"], {"device_code": True, "label": label}, ttl=data["expires_in"]
        )
        return oauth.LoginStart(
            provider,
            flow_id,
            "device",
            expires_at,
            user_code=data["user_code"],
            verification_uri=data["verification_uri"],
            interval=data["interval"],
            instructions=f"Open {data['verification_uri']} and enter {data['user_code']}",
            warning=TERMS,
        )

    def complete_login(
        self, store, config, flow_id: str, answer: dict[str, Any] | None = None, provider: str = "copilot"
    ) -> oauth.LoginResult:
        device_code, data = oauth.load_state(store, provider, flow_id)
        response = httpx.post(f"{_authority().url}/device/token", json={"device_code": device_code, "client_id": CLIENT_ID})
        body = response.json()
        if body.get("error") == "authorization_pending":
            return oauth.LoginResult("pending", message="waiting for the code to be entered", interval=1)
        if response.status_code != 200:
            oauth.drop_state(flow_id)
            raise InvalidInput(f"the device login failed: {body.get('error')}")
        result = _finish(store, provider, body, data.get("label", ""))
        oauth.drop_state(flow_id)
        return result


DEVICE = DeviceLogin()


class TestProvider(Provider):
    """Refreshes against the authority's token endpoint (for the admin's "refresh now")."""

    __test__ = False
    authority: ClassVar[LoginAuthority | None] = None
    protocols = frozenset({Protocol.MESSAGES})

    async def refresh(self, account: AccountView, http: httpx.AsyncClient) -> TokenSet:
        response = await http.post(
            f"{_authority().url}/v1/oauth/token",
            json={"grant_type": "refresh_token", "refresh_token": account.refresh_token, "client_id": CLIENT_ID},
        )
        data = response.json()
        if response.status_code >= 400:
            raise ReauthRequired(data.get("error_description") or data.get("error") or "refused")
        return TokenSet(data["access_token"], data.get("refresh_token"), time.time() + float(data["expires_in"]))


class PasteProvider(TestProvider):
    name, display_name, terms_warning = "claude", "Claude (test)", TERMS
    login = PkceLogin("claude", "paste", PASTE_REDIRECT, "code")


class CallbackProvider(TestProvider):
    name, display_name, terms_warning = "codex", "Codex (test)", None
    login = PkceLogin("codex", "callback", CALLBACK_REDIRECT, "callback_url")


class DeviceProvider(TestProvider):
    name, display_name, terms_warning = "copilot", "Copilot (test)", TERMS
    login = DEVICE


TEST_PROVIDERS = {"claude": PasteProvider, "codex": CallbackProvider, "copilot": DeviceProvider}


def consent(authorize_url: str) -> tuple[str, str]:
    """Play the browser: approve at the authority; returns (code, state) as the provider hands them back."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    code = _authority().authorize(challenge=query["code_challenge"], redirect_uri=query["redirect_uri"], client_id=query["client_id"])
    return code, query["state"]
