"""A fake GitHub: device flow (pending, slow_down, pacing), /user, and the Copilot token exchange."""

# Tokens the fake Copilot API accepts are kept in `api_tokens` (shared with tests.fakes.copilot): Copilot
# tokens from the exchange while they live, and GitHub tokens of client ids whose tokens the exchange refuses
# (direct mode, like OpenCode's own app).

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply

VSCODE_CLIENT_ID = "Iv1.b507a08c87ecfe98"
OPENCODE_CLIENT_ID = "Ov23li8tweQw6odWQebz"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclasses.dataclass
class DeviceLogin:
    client_id: str
    user_code: str
    script: list[str]  # answers before the token is issued
    interval: float
    expires_at: float
    last_poll: float | None = None
    done: bool = False


@dataclasses.dataclass
class GitHubUser:
    id: int = 583231
    login: str = "octocat"
    email: str | None = "octocat@example.test"
    copilot: bool = True  # has a Copilot subscription


class FakeGitHub(FakeServer):
    def __init__(
        self, *, interval: float = 0.2, slow_down_step: float = 0.2, exchange_clients: tuple[str, ...] = (VSCODE_CLIENT_ID,)
    ) -> None:
        super().__init__()
        self.interval = interval
        self.slow_down_step = slow_down_step
        self.expires_in = 900
        self.exchange_clients = set(exchange_clients)
        self.script = ["authorization_pending", "slow_down"]  # each new device login answers these, then succeeds
        self.copilot_lifetime = 1800
        self.refresh_in: int | None = 1500
        self.api_url: str | None = None  # endpoints.api in exchange answers (the fake Copilot API)
        self.user = GitHubUser()
        self.devices: dict[str, DeviceLogin] = {}
        self.github_tokens: dict[str, tuple[str, GitHubUser]] = {}  # token -> (client id, user)
        self.copilot_tokens: dict[str, str] = {}  # live Copilot token -> GitHub token
        self.api_tokens: set[str] = set()
        self.too_fast_polls = 0
        self.exchanges = 0
        # premium requests: GET /copilot_internal/user's quota snapshot (None: the answer has none)
        self.premium: dict[str, Any] | None = {"entitlement": 300, "remaining": 270, "percent_remaining": 90.0, "unlimited": False}
        self.quota_reset_date = "2027-01-01"
        self.quota_reads = 0
        self._mutex = threading.Lock()
        self.route("POST", "/login/device/code", self.device_code)
        self.route("POST", "/login/oauth/access_token", self.access_token)
        self.route("GET", "/user", self.user_info)
        self.route("GET", "/copilot_internal/v2/token", self.exchange)
        self.route("GET", "/copilot_internal/user", self.copilot_user)

    # -- test controls ----------------------------------------------------------------------
    def seed_github_token(self, client_id: str = VSCODE_CLIENT_ID, user: GitHubUser | None = None) -> str:
        """A GitHub token as a past login would have left it."""
        token = "gho_" + secrets.token_hex(18)
        with self._mutex:
            self.github_tokens[token] = (client_id, user or self.user)
            if client_id not in self.exchange_clients:
                self.api_tokens.add(token)
        return token

    def expire_copilot_tokens(self) -> None:
        """Every Copilot token issued so far goes stale (the API refuses it), whatever its expires_at said."""
        with self._mutex:
            for token in self.copilot_tokens:
                self.api_tokens.discard(token)
            self.copilot_tokens.clear()

    def revoke(self, github_token: str) -> None:
        with self._mutex:
            self.github_tokens.pop(github_token, None)
            self.api_tokens.discard(github_token)
            for token in [t for t, owner in self.copilot_tokens.items() if owner == github_token]:
                self.copilot_tokens.pop(token)
                self.api_tokens.discard(token)

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _params(request: Recorded) -> dict[str, str]:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = request.json
            return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        return request.form

    def _bearer(self, request: Recorded) -> tuple[str, tuple[str, GitHubUser]] | None:
        value = request.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        owner = self.github_tokens.get(token.strip())
        return (token.strip(), owner) if owner else None

    # -- device flow ------------------------------------------------------------------------------
    def device_code(self, request: Recorded) -> Reply:
        params = self._params(request)
        if not params.get("client_id"):
            return Reply(400, {"error": "unauthorized_client", "error_description": "client_id is required"})
        if params.get("scope") != "read:user":
            return Reply(400, {"error": "invalid_scope", "error_description": f"unexpected scope {params.get('scope')!r}"})
        code = "dc_" + secrets.token_hex(10)
        user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        with self._mutex:
            self.devices[code] = DeviceLogin(
                params["client_id"], user_code, list(self.script), self.interval, time.time() + self.expires_in
            )
        return Reply(
            200,
            {
                "device_code": code,
                "user_code": user_code,
                "verification_uri": f"{self.url}/login/device",
                "expires_in": self.expires_in,
                "interval": self.interval,
            },
        )

    def access_token(self, request: Recorded) -> Reply:
        params = self._params(request)
        if params.get("grant_type") != DEVICE_GRANT:
            return Reply(200, {"error": "unsupported_grant_type", "error_description": "device grant expected"})
        now = time.time()
        with self._mutex:
            login = self.devices.get(params.get("device_code", ""))
            if login is None or login.done or login.client_id != params.get("client_id"):
                return Reply(200, {"error": "incorrect_device_code", "error_description": "The device_code provided is not valid."})
            if now > login.expires_at:
                return Reply(200, {"error": "expired_token", "error_description": "The device_code has expired."})
            if login.last_poll is not None and now - login.last_poll < login.interval - 0.05:
                self.too_fast_polls += 1
                login.interval += self.slow_down_step
                login.last_poll = now
                return Reply(200, {"error": "slow_down", "error_description": "Too many requests.", "interval": login.interval})
            login.last_poll = now
            if login.script:
                answer = login.script.pop(0)
                if answer == "slow_down":
                    login.interval += self.slow_down_step
                    return Reply(200, {"error": "slow_down", "error_description": "Too many requests.", "interval": login.interval})
                return Reply(200, {"error": answer, "error_description": f"fake: {answer}"})
            login.done = True
        token = self.seed_github_token(login.client_id)
        return Reply(200, {"access_token": token, "token_type": "bearer", "scope": "read:user"})

    # -- API ------------------------------------------------------------------------------------------
    def user_info(self, request: Recorded) -> Reply:
        found = self._bearer(request)
        if found is None:
            return Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        user = found[1][1]
        return Reply(200, {"login": user.login, "id": user.id, "email": user.email, "type": "User"})

    def copilot_user(self, request: Recorded) -> Reply:
        """What VS Code reads for the premium-request quota (the GitHub token, not the Copilot token)."""
        found = self._bearer(request)
        if found is None:
            return Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        with self._mutex:
            self.quota_reads += 1
        snapshots = {"chat": {"unlimited": True, "percent_remaining": 100.0}, "completions": {"unlimited": True}}
        if self.premium is not None:
            snapshots["premium_interactions"] = dict(self.premium)
        user = found[1][1]
        return Reply(
            200,
            {"login": user.login, "copilot_plan": "individual", "quota_reset_date": self.quota_reset_date, "quota_snapshots": snapshots},
        )

    def exchange(self, request: Recorded) -> Reply:
        found = self._bearer(request)
        if found is None:
            return Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        github_token, (client_id, user) = found
        if client_id not in self.exchange_clients:
            return Reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        if not user.copilot:
            return Reply(403, {"message": "Resource not accessible by integration"})
        now = int(time.time())
        expires_at = now + self.copilot_lifetime
        token = (
            f"tid={secrets.token_hex(16)};exp={expires_at};sku=copilot_individual;proxy-ep=proxy.individual.githubcopilot.com;"
            f"8kp=1:{secrets.token_hex(8)}"
        )
        with self._mutex:
            self.exchanges += 1
            self.copilot_tokens[token] = github_token
            self.api_tokens.add(token)
        answer: dict[str, Any] = {
            "token": token,
            "expires_at": expires_at,
            "sku": "copilot_individual",
            "chat_enabled": True,
            "tracking_id": secrets.token_hex(8),
            "individual": True,
            "endpoints": {
                "api": self.api_url or f"{self.url}/no-copilot-api",
                "proxy": "https://proxy.invalid",
                "telemetry": "https://telemetry.invalid",
                "origin-tracker": "https://origin.invalid",
            },
        }
        if self.refresh_in is not None:
            answer["refresh_in"] = self.refresh_in
        return Reply(200, answer)
