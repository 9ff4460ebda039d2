"""Adding a Copilot account: GitHub's device flow (RFC 8628), polled one step at a time, and token imports."""

# The device code lives encrypted in the store (providers.oauth), so a login started by one Kleis process
# (the admin page, `--no-wait`) can be finished by another (`--poll FLOW_ID`).

from __future__ import annotations

import time
from typing import Any

import httpx

from core.config import Config
from core.enums import ProviderName
from core.exceptions import InvalidInput, ProviderError, TransientProviderError
from core.jsonshape import json_or_none, mapping
from providers import oauth
from providers.copilot import imports, tokens
from providers.copilot.headers import editor_headers
from store.db import Store

PROVIDER = ProviderName.COPILOT
SCOPE = "read:user"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0  # RFC 8628 §3.5: add 5 seconds when told to slow down
DEFAULT_INTERVAL = 5.0
DEFAULT_EXPIRES_IN = 900.0

TERMS_WARNING = (
    "GitHub does not sanction Copilot outside its own and supported clients: its terms forbid sharing accounts "
    "or tokens, and GitHub has suspended accounts that used Copilot through proxies. Kleis presents itself to "
    "Copilot as VS Code. Use only your own account, for yourself, at your own risk."
)


def _post(config: Config, url: str, payload: dict[str, str], what: str) -> httpx.Response:
    try:
        with oauth.http_client(config) as http:
            return http.post(url, json=payload, headers={"Accept": "application/json", "User-Agent": editor_headers(config)["User-Agent"]})
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"{what}: could not reach {config.github_base} ({type(exc).__name__})") from None


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default


def start_login(store: Store, config: Config, *, label: str = "", **options: Any) -> oauth.LoginStart:
    """Ask GitHub for a device code; the user enters `user_code` at `verification_uri`."""
    response = _post(
        config,
        f"{config.github_base}/login/device/code",
        {"client_id": config.copilot_client_id, "scope": SCOPE},
        "GitHub device code request",
    )
    data = json_or_none(response.content)
    if response.status_code != 200 or not isinstance(data, dict) or "device_code" not in data:
        raise oauth.token_error(response, "GitHub device code request")
    for field in ("device_code", "user_code", "verification_uri"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise ProviderError(f"GitHub device code request: the answer has no {field}")
    interval = _number(data.get("interval"), DEFAULT_INTERVAL)
    flow_id = oauth.new_state()
    now = time.time()
    expires_at = oauth.save_state(
        store,
        PROVIDER,
        flow_id,
        verifier=data["device_code"],
        data={"interval": interval, "next_poll_at": now + interval, "client_id": config.copilot_client_id, "label": label},
        ttl=_number(data.get("expires_in"), DEFAULT_EXPIRES_IN),
    )
    return oauth.LoginStart(
        provider=PROVIDER,
        flow_id=flow_id,
        kind="device",
        expires_at=expires_at,
        user_code=data["user_code"],
        verification_uri=data["verification_uri"],
        interval=interval,
        instructions=f"Open {data['verification_uri']} and enter the code {data['user_code']}",
        warning=TERMS_WARNING,
    )


def complete_login(store: Store, config: Config, flow_id: str, answer: dict[str, Any] | None = None) -> oauth.LoginResult:
    """Ask GitHub once whether the code was entered (never sooner than the interval allows)."""
    device_code, data = oauth.load_state(store, PROVIDER, flow_id)
    if data.get("github_token"):  # GitHub already answered; only storing the account failed last time
        return _store_account(store, config, flow_id, data["github_token"], data.get("label") or "")
    now = time.time()
    interval = _number(data.get("interval"), DEFAULT_INTERVAL)
    wait = float(data.get("next_poll_at", 0)) - now
    if wait > 0:
        return oauth.LoginResult("pending", interval=wait, message="waiting for the code to be entered on GitHub")
    response = _post(
        config,
        f"{config.github_base}/login/oauth/access_token",
        {"client_id": data.get("client_id") or config.copilot_client_id, "device_code": device_code, "grant_type": DEVICE_GRANT},
        "GitHub device login",
    )
    body = mapping(json_or_none(response.content))
    if response.status_code >= 500 or response.status_code == 429:
        return _pending(store, flow_id, data, interval * 2, now, f"GitHub answered {response.status_code}; asking again later")
    token = body.get("access_token")
    if isinstance(token, str) and token:
        oauth.update_state(store, flow_id, {**data, "github_token": token})
        return _store_account(store, config, flow_id, token, data.get("label") or "")
    error = body.get("error")
    if error == "authorization_pending":
        return _pending(store, flow_id, data, interval, now, "waiting for the code to be entered on GitHub")
    if error == "slow_down":
        slower = _number(body.get("interval"), interval + SLOW_DOWN_STEP)
        return _pending(store, flow_id, data, max(slower, interval), now, "GitHub asked Kleis to poll more slowly")
    oauth.drop_state(flow_id)
    if error == "expired_token":
        raise InvalidInput("the GitHub code expired before it was entered; start the login again")
    if error == "access_denied":
        raise InvalidInput("the GitHub login was cancelled (access denied); start it again to retry")
    raise oauth.token_error(response, "GitHub device login")


def _pending(store: Store, flow_id: str, data: dict[str, Any], interval: float, now: float, message: str) -> oauth.LoginResult:
    oauth.update_state(store, flow_id, {**data, "interval": interval, "next_poll_at": now + interval})
    return oauth.LoginResult("pending", interval=interval, message=message)


def _store_account(store: Store, config: Config, flow_id: str, github_token: str, label: str = "") -> oauth.LoginResult:
    """Exchange and store; a transient failure keeps the GitHub token (encrypted) for the next call to finish."""
    try:
        with oauth.http_client(config) as http:
            token_set, user = tokens.establish(config, github_token, http)
    except TransientProviderError:
        raise
    except ProviderError:
        oauth.drop_state(flow_id)  # e.g. no Copilot on this account: asking again cannot help
        raise
    result = oauth.finish(store, PROVIDER, user.identity, token_set, email=user.email, label=label or user.login or "", how="login")
    oauth.drop_state(flow_id)
    return _with_mode(result, token_set.metadata)


def _with_mode(result: oauth.LoginResult, metadata: dict[str, Any]) -> oauth.LoginResult:
    mode = "Copilot token exchange" if metadata.get("mode") == "exchange" else "direct mode (GitHub token as bearer)"
    return oauth.LoginResult(result.status, result.account_id, result.created, f"{result.message}; {mode}", result.interval)


def import_credentials(
    store: Store, config: Config, path: str | None = None, github_token: str | None = None, **options: Any
) -> oauth.LoginResult:
    """An account from a credentials file or a GitHub token; nothing is stored unless GitHub accepts the token."""
    if path and github_token:
        raise InvalidInput("give either --file or --github-token, not both")
    if path:
        found = imports.read_file(path, config)
    elif github_token:
        found = imports.FoundToken(imports.check_token_text(github_token, "the given --github-token"), None, "--github-token")
    else:
        raise InvalidInput("importing a Copilot account needs --file PATH or --github-token TOKEN")
    with oauth.http_client(config) as http:
        token_set, user = tokens.establish(config, found.github_token, http, login_hint=found.login)
    result = oauth.finish(store, PROVIDER, user.identity, token_set, email=user.email, label=user.login or "", how="import")
    return _with_mode(result, token_set.metadata)
