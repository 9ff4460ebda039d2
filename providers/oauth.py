"""OAuth pieces every provider's login shares: PKCE, login state kept in the store, pasted answers, results.

A login has two halves that may run in different processes (the admin of one Kleis starts it, another
finishes it), so its state and PKCE verifier live in the store (`OAuthState`, encrypted, with an expiry).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from core.config import Config
from core.exceptions import InvalidInput, ProviderError, ReauthRequired, TransientProviderError
from store.accounts import TokenSet, upsert_account
from store.db import Store
from store.models import OAuthState

LOGIN_TTL = 15 * 60


@dataclasses.dataclass(frozen=True)
class LoginStart:
    """What a user needs to finish a login; `flow_id` names it for `complete_login`."""

    provider: str
    flow_id: str
    kind: str  # paste (Claude code#state) | callback (Codex callback URL) | device (user code)
    expires_at: float
    authorize_url: str | None = None
    user_code: str | None = None
    verification_uri: str | None = None
    interval: float | None = None
    instructions: str = ""
    warning: str | None = None  # the provider's terms, shown wherever the account is added

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class LoginResult:
    status: str  # done | pending
    account_id: int | None = None
    created: bool = False
    message: str = ""
    interval: float | None = None  # for pending device flows: wait this long before asking again

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def authorization_code_grant(client_id: str, code: str, redirect_uri: str, verifier: str, **extra: str) -> dict[str, str]:
    """The token request that redeems an authorization code (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.5)."""
    grant = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": redirect_uri}
    return {**grant, **extra, "code_verifier": verifier}


def refresh_grant(client_id: str, refresh_token: str) -> dict[str, str]:
    """The token request that trades a refresh token for a new pair (RFC 6749 §6), with no `scope`."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}


def random_token() -> str:
    """32 random bytes, base64url without padding: 43 characters, what real OAuth clients send. Anthropic's authorize
    page refuses a shorter `state` ("Invalid request format", reported 2026-08 and 2026-09)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge): the verifier is `random_token()` (RFC 7636 §4.1 allows 43–128 characters)."""
    verifier = random_token()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def new_state() -> str:
    """A login's `state` (and flow id): `random_token()`, drawn again while it starts with `-`, since the flow id is
    also typed on a command line (`--poll <flow id>`), where argparse would read it as an option (1 draw in 32)."""
    token = random_token()
    while token.startswith("-"):
        token = random_token()
    return token


def save_state(
    store: Store, provider: str, state: str, verifier: str = "", data: dict[str, Any] | None = None, ttl: float = LOGIN_TTL
) -> float:
    """Keep a login's secrets (encrypted) until it completes or expires. Returns the expiry."""
    now = time.time()
    purge_expired_states(now)
    expires_at = now + ttl
    OAuthState.create(
        state=state,
        provider=provider,
        verifier=store.cipher.encrypt(verifier),
        flow_data=store.cipher.encrypt(json.dumps(data or {})),
        created_at=now,
        expires_at=expires_at,
    )
    return expires_at


def purge_expired_states(now: float | None = None) -> int:
    """Delete expired logins in progress and pending imports (their secrets are encrypted, but not kept longer)."""
    removed: int = OAuthState.delete().where(OAuthState.expires_at < (time.time() if now is None else now)).execute()
    return removed


def load_state(store: Store, provider: str, state: str) -> tuple[str, dict[str, Any]]:
    """(verifier, data) of a login in progress; InvalidInput when unknown, of another provider, or expired."""
    row = OAuthState.get_or_none(OAuthState.state == state)
    if row is None or row.provider != provider:
        raise InvalidInput(f"this {provider} login is unknown (its state does not match one Kleis issued); start the login again")
    if row.expires_at < time.time():
        row.delete_instance()
        raise InvalidInput(f"this {provider} login expired; start it again")
    return store.cipher.decrypt(row.verifier), json.loads(store.cipher.decrypt(row.flow_data) or "{}")


def update_state(store: Store, state: str, data: dict[str, Any]) -> None:
    OAuthState.update(flow_data=store.cipher.encrypt(json.dumps(data))).where(OAuthState.state == state).execute()


def drop_state(state: str) -> None:
    OAuthState.delete().where(OAuthState.state == state).execute()


def login_for_bare_code(provider: str) -> str | None:
    """The login a pasted code without its state belongs to: only when exactly one is in progress, since nothing
    else ties the code to a login (the state is what does)."""
    rows = list(
        OAuthState.select(OAuthState.state).where((OAuthState.provider == provider) & (OAuthState.expires_at > time.time())).limit(2)
    )
    if len(rows) > 1:
        raise InvalidInput(f"several {provider} logins are in progress: paste the whole answer with its state (code#state or the full URL)")
    return rows[0].state if rows else None


def parse_pasted(answer: str) -> tuple[str, str | None]:
    """(code, state) from a full callback URL, `code#state`, or `code=…&state=…` (then a bare code)."""
    text = (answer or "").strip()
    if not text:
        raise InvalidInput("the pasted answer is empty")
    if text.startswith(("http://", "https://")):
        query = parse_qs(urlsplit(text).query)
        fragment = parse_qs(urlsplit(text).fragment)
        code = first_value(query, "code") or first_value(fragment, "code")
        state = first_value(query, "state") or first_value(fragment, "state")
        if not code:
            error = first_value(query, "error_description") or first_value(query, "error")
            raise InvalidInput(f"the callback URL carries no code{': ' + error if error else ''}")
        return code, state
    if "#" in text:
        code, _, state = text.partition("#")
        if not code or not state:
            raise InvalidInput("expected code#state")
        return code, state
    if "code=" in text:
        query = parse_qs(text.lstrip("?"))
        code = (query.get("code") or [""])[0]
        if not code:
            raise InvalidInput("the pasted query has no code")
        return code, first_value(query, "state")
    if "=" in text or "&" in text or " " in text:
        raise InvalidInput("expected code#state, the full callback URL, or code=…&state=…")
    return text, None


def first_value(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def check_state(expected: str, given: str | None) -> None:
    if given is not None and not secrets.compare_digest(expected, given):
        raise InvalidInput("the pasted state does not match the login Kleis started; start the login again and paste its answer")


def http_client(config: Config) -> httpx.Client:
    """For logins and imports (CLI, admin): short timeouts, no environment proxies."""
    return httpx.Client(timeout=httpx.Timeout(20.0, connect=10.0), trust_env=False)


def token_error(response: httpx.Response, what: str) -> ProviderError:
    """An OAuth error response as the right exception: invalid_grant means the credential is dead."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    description = (body.get("error_description") if isinstance(body, dict) else None) or (
        body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), str) else None
    )
    if isinstance(error, dict):
        description = description or error.get("message")
        error = error.get("code") or error.get("type")
    message = f"{what}: {response.status_code} {error or ''} {description or ''}".strip()
    if response.status_code >= 500 or response.status_code == 429:
        return TransientProviderError(message, status=response.status_code, code=str(error) if error else None)
    text = f"{error} {description}".lower()
    dead = (
        "invalid_grant",
        "invalid_token",
        "unauthorized_client",
        "refresh_token_reused",
        "refresh_token_invalidated",
        "refresh_token_expired",
    )
    if error in dead or any(
        phrase in text for phrase in ("already used", "already been used", "reused", "invalidated", "revoked", "expired")
    ):
        return ReauthRequired(message, status=response.status_code, code=str(error) if error else None)
    return ProviderError(message, status=response.status_code, code=str(error) if error else None)


def finish(
    store: Store, provider: str, identity: str, tokens: TokenSet, *, email: str | None = None, label: str = "", how: str = "login"
) -> LoginResult:
    row, created = upsert_account(provider, identity, tokens, store.cipher, email=email, label=label, how=how)
    verb = "added" if created else "updated"
    return LoginResult("done", account_id=row.id, created=created, message=f"{provider} account {row.id} ({email or identity}) {verb}")
