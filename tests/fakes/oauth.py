"""A fake OAuth authority: authorization code with a real PKCE S256 check, and refresh tokens that rotate.

`authorize()` plays the user consenting in a browser: it returns a code bound to the PKCE challenge,
redirect URI and client id. The token endpoint answers JSON or form-encoded bodies as configured.
A refresh token works once; reusing it (or an unknown one) is `invalid_grant`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeOAuth(FakeServer):
    def __init__(
        self,
        *,
        token_path: str = "/v1/oauth/token",
        form: bool = False,
        client_id: str = "test-client",
        access_prefix: str = "sk-ant-oat01-fake",
        refresh_prefix: str = "sk-ant-ort01-fake",
        expires_in: int = 3600,
    ) -> None:
        super().__init__()
        self.form = form
        self.client_id = client_id
        self.access_prefix = access_prefix
        self.refresh_prefix = refresh_prefix
        self.expires_in = expires_in
        self.extra: dict[str, Any] = {}  # merged into every token answer (account identity, id_token…)
        self.extra_for_grant: Callable[[str, dict[str, str]], dict[str, Any]] | None = None
        self.token_delay = 0.0
        self.fail_next: list[Reply] = []
        self.codes: dict[str, dict[str, str]] = {}
        self.live_refresh: set[str] = set()
        self.used_refresh: set[str] = set()
        self.issued_access: set[str] = set()
        self.refresh_calls = 0
        self.reused_refresh_attempts = 0
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        self.on_access_token: list[Callable[[str], None]] = []
        self.route("POST", token_path, self.token)

    # -- what a browser consent would do ------------------------------------------------
    def authorize(self, *, challenge: str, redirect_uri: str, client_id: str | None = None, method: str = "S256") -> str:
        assert method == "S256", "the fake only accepts S256"
        code = "code-" + secrets.token_hex(8)
        self.codes[code] = {"challenge": challenge, "redirect_uri": redirect_uri, "client_id": client_id or self.client_id}
        return code

    def seed(self) -> tuple[str, str]:
        """Issue an (access, refresh) pair directly, as for an account that logged in earlier."""
        access, refresh, _ = self._issue()
        return access, refresh

    # -- token endpoint -------------------------------------------------------------------
    def _params(self, request: Recorded) -> dict[str, str]:
        if self.form:
            assert request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"), "expected a form body"
            return request.form
        assert request.headers.get("content-type", "").startswith("application/json"), "expected a JSON body"
        return {k: v for k, v in (request.json or {}).items() if isinstance(v, str)}

    def _issue(self) -> tuple[str, str, dict[str, Any]]:
        with self._lock:
            n = next(self._counter)
            access = f"{self.access_prefix}-access-{n}-{secrets.token_hex(6)}"
            refresh = f"{self.refresh_prefix}-refresh-{n}-{secrets.token_hex(6)}"
            self.live_refresh.add(refresh)
            self.issued_access.add(access)
        for callback in self.on_access_token:
            callback(access)
        return access, refresh, {"access_token": access, "refresh_token": refresh, "expires_in": self.expires_in, "token_type": "Bearer"}

    def _error(self, status: int, error: str, description: str) -> Reply:
        return Reply(status, {"error": error, "error_description": description})

    def token(self, request: Recorded) -> Reply:
        if self.token_delay:
            time.sleep(self.token_delay)
        with self._lock:
            if self.fail_next:
                return self.fail_next.pop(0)
        params = self._params(request)
        grant = params.get("grant_type")
        if params.get("client_id") != self.client_id:
            return self._error(400, "invalid_client", "unknown client_id")
        if grant == "authorization_code":
            with self._lock:
                code = self.codes.pop(params.get("code", ""), None)
            if code is None:
                return self._error(400, "invalid_grant", "unknown or used authorization code")
            if params.get("redirect_uri") != code["redirect_uri"]:
                return self._error(400, "invalid_grant", "Invalid 'redirect_uri' in request")
            if s256(params.get("code_verifier", "")) != code["challenge"]:
                return self._error(400, "invalid_grant", "PKCE verification failed")
        elif grant == "refresh_token":
            presented = params.get("refresh_token", "")
            with self._lock:
                self.refresh_calls += 1
                if presented in self.used_refresh:
                    self.reused_refresh_attempts += 1
                    return self._error(400, "invalid_grant", "refresh token already used")
                if presented not in self.live_refresh:
                    return self._error(400, "invalid_grant", "unknown refresh token")
                self.live_refresh.discard(presented)
                self.used_refresh.add(presented)
        else:
            return self._error(400, "unsupported_grant_type", f"grant_type {grant!r}")
        _, _, answer = self._issue()
        answer.update(self.extra)
        if self.extra_for_grant is not None:
            answer.update(self.extra_for_grant(grant or "", params))
        return Reply(200, answer)
