"""From a GitHub token to what the Copilot API accepts: the token exchange (or direct mode) and the GitHub identity."""

# Exchange mode: `GET <github api>/copilot_internal/v2/token` turns the long-lived GitHub token into a Copilot
# token that lives about 30 minutes (`expires_at`, `refresh_in`, `endpoints.api`). Direct mode: client ids whose
# tokens the exchange refuses with 404 (OpenCode's own app) send the GitHub token itself as the bearer.
# The account keeps the GitHub token in its refresh slot and the bearer in its access slot.

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.config import Config
from core.exceptions import ProviderError, ReauthRequired, TransientProviderError
from providers.copilot.headers import GITHUB_API_VERSION, editor_headers
from store.accounts import TokenSet

DEFAULT_API_BASE = "https://api.githubcopilot.com"
EXCHANGE_PATH = "/copilot_internal/v2/token"
REFRESH_MARGIN = 60.0  # renew this long before `refresh_in` runs out (copilot-api does the same)


@dataclasses.dataclass(frozen=True)
class GitHubUser:
    """Who a GitHub token belongs to; `identity` keys the account row."""

    identity: str
    login: str | None = None
    email: str | None = None


def github_host(config: Config) -> str:
    return urlsplit(config.github_base).netloc or "github.com"


def exchange_url(config: Config) -> str:
    return config.github_api_base + EXCHANGE_PATH


def user_url(config: Config) -> str:
    return config.github_api_base + "/user"


def github_headers(config: Config, github_token: str) -> dict[str, str]:
    return {
        "Authorization": f"token {github_token}",
        "Accept": "application/json",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
        **editor_headers(config),
    }


def api_base(config: Config, metadata: dict[str, Any]) -> str:
    """The configured Copilot API (enterprise derives it), else the token's endpoints.api, else the public one."""
    return config.copilot_api_base or metadata.get("api_base") or DEFAULT_API_BASE


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or ""
    if isinstance(body, dict):
        for field in ("message", "error_description", "error"):
            if isinstance(body.get(field), str):
                return str(body[field])[:300]
    return ""


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc:
        return value.rstrip("/")
    return None


def refresh_deadline(now: float, expires_at: float, refresh_in: float | None) -> float:
    """When to renew: REFRESH_MARGIN before `refresh_in` ends (never earlier than half of it), before expiry anyway."""
    latest = expires_at - min(REFRESH_MARGIN, max(0.0, expires_at - now) / 2)
    if refresh_in is None or refresh_in <= 0:
        return latest
    return min(now + max(refresh_in - REFRESH_MARGIN, refresh_in / 2), latest)


def tokens_from_exchange(
    config: Config, response: httpx.Response, github_token: str, *, keep_github_token: bool, now: float | None = None
) -> TokenSet | None:
    """The Copilot token from an exchange answer; None when this client id's tokens are not exchanged (404)."""
    now = time.time() if now is None else now
    status = response.status_code
    if status == 404:
        return None
    if status == 401:
        raise ReauthRequired(
            f"GitHub refused the stored GitHub token at the Copilot token exchange (401 {_message(response)}); log in again", status=401
        )
    if status == 403 and response.headers.get("x-ratelimit-remaining") != "0" and "retry-after" not in response.headers:
        raise ReauthRequired(
            f"GitHub says this account cannot use Copilot (403 {_message(response)}); check the subscription, then log in again", status=403
        )
    if status != 200:
        raise TransientProviderError(f"the Copilot token exchange answered {status} {_message(response)}".strip(), status=status)
    try:
        data = response.json()
        token, expires_at = data["token"], float(data["expires_at"])
    except (ValueError, KeyError, TypeError):
        raise TransientProviderError("the Copilot token exchange answered 200 without a token and expires_at") from None
    if not isinstance(token, str) or not token:
        raise TransientProviderError("the Copilot token exchange answered an empty token")
    refresh_in = data.get("refresh_in")
    refresh_in = float(refresh_in) if isinstance(refresh_in, (int, float)) and not isinstance(refresh_in, bool) else None
    endpoints = data.get("endpoints") if isinstance(data.get("endpoints"), dict) else {}
    metadata = {
        "mode": "exchange",
        "api_base": _http_url(endpoints.get("api")),
        "issued_at": now,
        "refresh_in": refresh_in,
        "refresh_at": refresh_deadline(now, expires_at, refresh_in),
        "sku": data.get("sku") if isinstance(data.get("sku"), str) else None,
        "chat_enabled": data.get("chat_enabled") if isinstance(data.get("chat_enabled"), bool) else None,
    }
    return TokenSet(token, github_token if keep_github_token else None, expires_at, metadata)


def direct_tokens(github_token: str, *, keep_github_token: bool, now: float | None = None) -> TokenSet:
    """Direct mode: the GitHub token is the bearer; it has no expiry Kleis knows of."""
    now = time.time() if now is None else now
    metadata = {
        "mode": "direct",
        "api_base": None,
        "issued_at": now,
        "refresh_in": None,
        "refresh_at": None,
        "sku": None,
        "chat_enabled": None,
    }
    return TokenSet(github_token, github_token if keep_github_token else None, None, metadata)


def user_from_response(config: Config, response: httpx.Response) -> GitHubUser | None:
    """The token's GitHub user; None when GitHub does not say (the caller falls back); 401: the token is dead."""
    if response.status_code == 401:
        raise ReauthRequired(f"GitHub refused the GitHub token (401 {_message(response)})", status=401)
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), (int, str)) or isinstance(data.get("id"), bool):
        return None
    login = data.get("login") if isinstance(data.get("login"), str) else None
    email = data.get("email") if isinstance(data.get("email"), str) else None
    return GitHubUser(f"{github_host(config)}/{data['id']}", login, email)


def fallback_user(config: Config, github_token: str, login: str | None) -> GitHubUser:
    """When /user says nothing: the login named by an imported file, else a fingerprint of the token (never the token)."""
    if login:
        return GitHubUser(f"{github_host(config)}/login:{login}", login)
    fingerprint = hashlib.sha256(github_token.encode()).hexdigest()[:16]
    return GitHubUser(f"{github_host(config)}/token:{fingerprint}")


def establish(config: Config, github_token: str, http: httpx.Client, login_hint: str | None = None) -> tuple[TokenSet, GitHubUser]:
    """Login and import: exchange (or direct mode) plus identity, for a GitHub token just obtained."""
    try:
        tokens = tokens_from_exchange(
            config, http.get(exchange_url(config), headers=github_headers(config, github_token)), github_token, keep_github_token=True
        )
        user = user_from_response(config, http.get(user_url(config), headers=github_headers(config, github_token)))
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"could not reach GitHub at {config.github_api_base} ({type(exc).__name__})") from None
    if tokens is None:
        if user is None:
            raise ProviderError(
                "GitHub neither exchanged this token for a Copilot token (404) nor said whose it is; is it a GitHub token with Copilot?"
            )
        tokens = direct_tokens(github_token, keep_github_token=True)
    return tokens, user or fallback_user(config, github_token, login_hint)


async def renew(config: Config, github_token: str, http: httpx.AsyncClient) -> TokenSet:
    """Refresh: a new Copilot token (the GitHub token stays), or in direct mode a check that the GitHub token lives."""
    response = await http.get(exchange_url(config), headers=github_headers(config, github_token))
    tokens = tokens_from_exchange(config, response, github_token, keep_github_token=False)
    if tokens is not None:
        return tokens
    check = await http.get(user_url(config), headers=github_headers(config, github_token))
    user_from_response(config, check)  # raises ReauthRequired on 401
    if check.status_code >= 500 or check.status_code == 429:
        raise TransientProviderError(f"GitHub answered {check.status_code} while checking the GitHub token", status=check.status_code)
    return direct_tokens(github_token, keep_github_token=False)
