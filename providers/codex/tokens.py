"""The ChatGPT token endpoint: form-encoded code exchange and refresh, and the TokenSet an answer becomes."""

from __future__ import annotations

import time
from typing import Any

import httpx

from core.config import Config
from core.exceptions import ProviderError, TransientProviderError
from providers.codex.constants import CLIENT_ID, DEFAULT_EXPIRES_IN, TOKEN_PATH
from providers.codex.jwt import CodexIdentity, identity_from_tokens
from providers.oauth import authorization_code_grant, refresh_grant, token_error
from store.accounts import TokenSet

FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}


def token_url(config: Config) -> str:
    return config.codex_auth_base + TOKEN_PATH


def exchange_form(code: str, redirect_uri: str, verifier: str) -> dict[str, str]:
    return authorization_code_grant(CLIENT_ID, code, redirect_uri, verifier)


def refresh_form(refresh_token: str) -> dict[str, str]:
    # PI and OpenCode send these three fields; CPA and Codex CLI add scope=openid profile email (not needed).
    return refresh_grant(CLIENT_ID, refresh_token)


def _expires_at(data: dict[str, Any], identity: CodexIdentity, now: float) -> float:
    expires_in = data.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        return now + float(expires_in)
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        return now + float(expires_in)
    if identity.access_expires_at:
        return identity.access_expires_at
    return now + DEFAULT_EXPIRES_IN


def tokens_from_answer(data: Any, what: str) -> tuple[TokenSet, CodexIdentity]:
    """A token endpoint's 200 answer as a TokenSet (refresh None keeps the stored one) and who it names.

    The id token is read for the account's facts and then dropped: only those facts go in the metadata.
    """
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise ProviderError(f"{what}: the token endpoint answered without an access token")
    access = data["access_token"]
    refresh = data.get("refresh_token") if isinstance(data.get("refresh_token"), str) and data.get("refresh_token") else None
    id_token = data.get("id_token") if isinstance(data.get("id_token"), str) else None
    identity = identity_from_tokens(id_token, access)
    tokens = TokenSet(access, refresh, _expires_at(data, identity, time.time()), identity.metadata())
    return tokens, identity


def _answer(response: httpx.Response, what: str) -> tuple[TokenSet, CodexIdentity]:
    if response.status_code != 200:
        raise token_error(response, what)
    try:
        data = response.json()
    except ValueError:
        raise ProviderError(f"{what}: the token endpoint answered {response.status_code} without JSON") from None
    return tokens_from_answer(data, what)


def exchange_code(http: httpx.Client, config: Config, code: str, redirect_uri: str, verifier: str) -> tuple[TokenSet, CodexIdentity]:
    """Authorization code → tokens (login and device flows)."""
    try:
        response = http.post(token_url(config), data=exchange_form(code, redirect_uri, verifier), headers=FORM_HEADERS)
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"code exchange: the ChatGPT token endpoint is unreachable ({type(exc).__name__})") from None
    return _answer(response, "code exchange")


async def refresh_tokens(http: httpx.AsyncClient, config: Config, refresh_token: str) -> tuple[TokenSet, CodexIdentity]:
    """A rotated token pair. invalid_grant / "already used" → ReauthRequired; 5xx, 429, network → Transient."""
    try:
        response = await http.post(token_url(config), data=refresh_form(refresh_token), headers=FORM_HEADERS)
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"refresh: the ChatGPT token endpoint is unreachable ({type(exc).__name__})") from None
    return _answer(response, "refresh")
