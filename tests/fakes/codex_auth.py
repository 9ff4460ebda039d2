"""A fake ChatGPT auth host: form-encoded OAuth with PKCE (FakeOAuth), JWTs naming an account, the device flow."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.base import Recorded, Reply
from tests.fakes.oauth import FakeOAuth, s256

CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT (header.payload.signature, base64url without padding), as Kleis reads them."""
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{b64url(secrets.token_bytes(32))}"


@dataclasses.dataclass
class ChatGPTAccount:
    account_id: str = "acc-1111-aaaa"
    user_id: str = "user-alice"
    email: str = "alice@example.test"
    plan_type: str = "plus"

    def auth_claims(self) -> dict[str, Any]:
        return {
            "chatgpt_account_id": self.account_id,
            "chatgpt_user_id": self.user_id,
            "user_id": self.user_id,
            "chatgpt_plan_type": self.plan_type,
            "organizations": [{"id": "org-" + self.account_id, "is_default": True, "role": "owner"}],
        }

    def id_token(self) -> str:
        return make_jwt(
            {
                "iss": "https://auth.example.test",
                "aud": [CODEX_CLIENT_ID],
                "email": self.email,
                "exp": int(time.time()) + 3600,
                AUTH_CLAIM: self.auth_claims(),
            }
        )

    def access_token(self, jti: str, expires_in: int) -> str:
        return make_jwt(
            {
                "iss": "https://auth.example.test",
                "exp": int(time.time()) + expires_in,
                "jti": jti,
                PROFILE_CLAIM: {"email": self.email},
                AUTH_CLAIM: self.auth_claims(),
            }
        )


@dataclasses.dataclass
class DeviceCode:
    user_code: str
    polls: int = 0
    approved: bool = False


class FakeCodexAuth(FakeOAuth):
    """Token endpoint `/oauth/token` (form), device endpoints under `/api/accounts/deviceauth/`.

    Access tokens are JWTs carrying `account`'s claims; token answers include an id token unless
    `send_id_token` is False. A device code is approved after `approve_after` pending polls (None: never).
    """

    def __init__(self, account: ChatGPTAccount | None = None, *, expires_in: int = 3600) -> None:
        super().__init__(
            token_path="/oauth/token",
            form=True,
            client_id=CODEX_CLIENT_ID,
            access_prefix="codex",
            refresh_prefix="codex-rt",
            expires_in=expires_in,
        )
        self.account = account or ChatGPTAccount()
        self.send_id_token = True
        self.extra_for_grant = lambda grant, params: {"id_token": self.account.id_token()} if self.send_id_token else {}
        self.device_interval = "1"
        self.approve_after: int | None = 1
        self.devices: dict[str, DeviceCode] = {}
        self.route("POST", "/api/accounts/deviceauth/usercode", self.usercode)
        self.route("POST", "/api/accounts/deviceauth/token", self.device_token)

    def _issue(self) -> tuple[str, str, dict[str, Any]]:
        opaque, refresh, answer = super()._issue()
        access = self.account.access_token(opaque, self.expires_in)
        with self._lock:
            self.issued_access.discard(opaque)
            self.issued_access.add(access)
        answer["access_token"] = access
        return access, refresh, answer

    # -- what a browser and Codex CLI would do ------------------------------------------------
    def consent(self, authorize_url: str, state: str | None = None) -> str:
        """The user signs in; the browser lands on the redirect URI (localhost:1455) with the code and state."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        code = self.authorize(challenge=query["code_challenge"], redirect_uri=query["redirect_uri"], client_id=query["client_id"])
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'scope': query['scope'], 'state': state or query['state']})}"

    def codex_cli_auth_json(self) -> dict[str, Any]:
        """What Codex CLI writes to ~/.codex/auth.json after its own login."""
        access, refresh = self.seed()
        tokens = {
            "id_token": self.account.id_token(),
            "access_token": access,
            "refresh_token": refresh,
            "account_id": self.account.account_id,
        }
        return {"OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": "2026-05-01T10:00:00Z"}

    # -- device flow --------------------------------------------------------------------
    def usercode(self, request: Recorded) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        if body.get("client_id") != self.client_id:
            return Reply(400, {"error": {"message": "unknown client_id", "type": "invalid_request_error"}})
        device_auth_id = "deviceauth_" + secrets.token_hex(8)
        user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(3).upper()}"
        self.devices[device_auth_id] = DeviceCode(user_code)
        return Reply(200, {"device_auth_id": device_auth_id, "user_code": user_code, "interval": self.device_interval})

    def approve(self, user_code: str) -> None:
        for device in self.devices.values():
            if device.user_code == user_code:
                device.approved = True

    def device_token(self, request: Recorded) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        device_auth_id = str(body.get("device_auth_id"))
        device = self.devices.get(device_auth_id)
        if device is None or device.user_code != body.get("user_code"):
            return Reply(404, {"error": {"message": "Device authorization not found"}})
        device.polls += 1
        if not device.approved and (self.approve_after is None or device.polls <= self.approve_after):
            return Reply(403, {"error": {"message": "Device authorization is pending"}})
        del self.devices[device_auth_id]  # one approval per device code
        verifier = b64url(secrets.token_bytes(32))
        code = self.authorize(challenge=s256(verifier), redirect_uri=f"{self.url}/deviceauth/callback")
        return Reply(200, {"authorization_code": code, "code_challenge": s256(verifier), "code_verifier": verifier})
