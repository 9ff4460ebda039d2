"""Claude's OAuth token endpoint and profile: request bodies, answers as TokenSets, and the account identity."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx

from core.config import Config
from core.exceptions import ProviderError, ReauthRequired, TransientProviderError
from core.jsonshape import mapping, present_fields
from providers.claude.rewrite import ANTHROPIC_VERSION, OAUTH_BETA, claude_code_user_agent
from providers.oauth import authorization_code_grant, refresh_grant, token_error
from store.accounts import TokenSet

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPES = "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
TOKEN_PATH = "/v1/oauth/token"
CALLBACK_PATH = "/oauth/code/callback"
PROFILE_PATH = "/api/oauth/profile"
# Claude Code calls its OAuth endpoints with axios (ex-machina-co/opencode-anthropic-auth sends axios/1.13.6); a versioned
# claude-code UA drew 429s on refresh (jeongwookie/WhereMyTokens#9, 2026-05).
TOKEN_USER_AGENT = "axios/1.13.6"
TOKEN_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/plain, */*",
    "user-agent": TOKEN_USER_AGENT,
}


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a token belongs to: the account uuid is the identity; the rest is shown to the operator."""

    account_uuid: str
    email: str | None = None
    organization_uuid: str | None = None
    organization_name: str | None = None

    def metadata(self) -> dict[str, str]:
        return present_fields(self, ("account_uuid", "email", "organization_uuid", "organization_name"))


def token_url(config: Config) -> str:
    return f"{config.claude_auth_base}{TOKEN_PATH}"


def redirect_uri(config: Config) -> str:
    return f"{config.claude_auth_base}{CALLBACK_PATH}"


def exchange_body(code: str, state: str, verifier: str, redirect: str) -> dict[str, str]:
    """Anthropic's token endpoint wants the login's `state` back beside the code."""
    return authorization_code_grant(CLIENT_ID, code, redirect, verifier, state=state)


def refresh_body(refresh_token: str) -> dict[str, str]:
    """No `scope`: Anthropic answers invalid_scope when the list names a scope the grant lacks (pi-mono dropped it, 2026-03)."""
    return refresh_grant(CLIENT_ID, refresh_token)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def identity_from(answer: dict[str, Any]) -> Identity | None:
    """`account {uuid, email_address}` and `organization {uuid, name}` of a token or profile answer."""
    account, organization = mapping(answer.get("account")), mapping(answer.get("organization"))
    uuid = _text(account.get("uuid"))
    if uuid is None:
        return None
    return Identity(
        account_uuid=uuid,
        email=_text(account.get("email_address")) or _text(account.get("email")),
        organization_uuid=_text(organization.get("uuid")),
        organization_name=_text(organization.get("name")),
    )


def read_answer(response: httpx.Response, what: str, *, retry_other_errors: bool = False) -> dict[str, Any]:
    """The JSON of a 2xx token answer. Errors: invalid_grant → ReauthRequired, 5xx/429 → TransientProviderError;
    with `retry_other_errors` any other refusal is transient too (a refresh keeps its tokens and tries later)."""
    if response.status_code >= 400:
        error = token_error(response, what)
        if retry_other_errors and not isinstance(error, (ReauthRequired, TransientProviderError)):
            raise TransientProviderError(str(error), status=error.status, code=error.code)
        raise error
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not _text(answer.get("access_token")):
        raise TransientProviderError(f"{what}: the token endpoint answered {response.status_code} without an access token")
    return answer


def token_set(answer: dict[str, Any], now: float | None = None) -> TokenSet:
    """Tokens of an answer; a missing refresh token keeps the stored one. Metadata: identity and scopes, never secrets."""
    now = time.time() if now is None else now
    expires_in = answer.get("expires_in")
    expires_at = now + float(expires_in) if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) else None
    identity = identity_from(answer)
    metadata: dict[str, Any] = identity.metadata() if identity else {}
    if _text(answer.get("scope")):
        metadata["scopes"] = answer["scope"].strip()
    return TokenSet(answer["access_token"].strip(), _text(answer.get("refresh_token")), expires_at, metadata)


def post_token_sync(client: httpx.Client, config: Config, body: dict[str, str], what: str) -> dict[str, Any]:
    try:
        response = client.post(token_url(config), json=body, headers=TOKEN_HEADERS)
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"{what}: cannot reach {config.claude_auth_base} ({type(exc).__name__})") from None
    return read_answer(response, what)


async def refresh_tokens(http: httpx.AsyncClient, config: Config, refresh_token: str) -> TokenSet:
    what = "Claude token refresh"
    try:
        response = await http.post(token_url(config), json=refresh_body(refresh_token), headers=TOKEN_HEADERS)
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"{what}: cannot reach {config.claude_auth_base} ({type(exc).__name__})") from None
    return token_set(read_answer(response, what, retry_other_errors=True))


def fetch_profile(client: httpx.Client, config: Config, access_token: str) -> Identity | None:
    """The account behind an access token (api/oauth/profile); None when the token is refused."""
    headers = {
        "authorization": f"Bearer {access_token}",
        "anthropic-version": ANTHROPIC_VERSION,
        "anthropic-beta": OAUTH_BETA,
        "content-type": "application/json",
        "user-agent": claude_code_user_agent(config.claude_code_version),
    }
    url = f"{config.claude_api_base}{PROFILE_PATH}"
    try:
        response = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"cannot reach {config.claude_api_base} to identify the account ({type(exc).__name__})") from None
    if response.status_code >= 500:
        raise TransientProviderError(f"the Claude profile endpoint answered {response.status_code}", status=response.status_code)
    if response.status_code >= 400:
        return None
    try:
        answer = response.json()
    except ValueError:
        raise ProviderError("the Claude profile endpoint did not answer JSON") from None
    return identity_from(answer) if isinstance(answer, dict) else None
