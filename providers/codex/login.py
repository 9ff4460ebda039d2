"""Codex logins: browser PKCE with the pasted callback URL, the device flow for headless hosts, and imports.

The browser flow redirects to http://localhost:1455/auth/callback (fixed by the OAuth client). Unless Codex
CLI or Kleis's optional listener runs there, the page does not load; its address still carries the code and
state, so the user copies it. The device flow polls once per `complete_login` call: the CLI loops, the admin
page polls.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from core.config import Config
from core.exceptions import InvalidInput, ProviderError, TransientProviderError
from core.jsonshape import json_or_none, mapping
from providers.codex.accounts import store_account
from providers.codex.constants import (
    AUTHORIZE_PATH,
    CLIENT_ID,
    DEVICE_DEFAULT_INTERVAL,
    DEVICE_MIN_INTERVAL,
    DEVICE_REDIRECT_PATH,
    DEVICE_TOKEN_PATH,
    DEVICE_USERCODE_PATH,
    DEVICE_VERIFY_PATH,
    PROVIDER,
    REDIRECT_URI,
    SCOPE,
    TERMS_WARNING,
)
from providers.codex.importer import import_credentials
from providers.codex.tokens import exchange_code
from providers.oauth import (
    LoginResult,
    LoginStart,
    check_state,
    drop_state,
    http_client,
    load_state,
    new_state,
    parse_pasted,
    pkce_pair,
    save_state,
    token_error,
    update_state,
)
from store.db import Store

__all__ = ["authorize_url", "complete_login", "import_credentials", "start_login"]

SLOW_DOWN_STEP = 5.0  # seconds added to the poll interval when the device endpoint answers 429


def authorize_url(config: Config, state: str, challenge: str) -> str:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": state,
        "originator": config.codex_originator,
    }
    return f"{config.codex_auth_base}{AUTHORIZE_PATH}?{urlencode(query)}"


def start_login(store: Store, config: Config, *, device: bool = False, label: str = "", **options: Any) -> LoginStart:
    """Begin a login: the browser flow (an authorize URL) or, with device=True, the device flow (a user code)."""
    if device:
        return _start_device(store, config, label)
    verifier, challenge = pkce_pair()
    state = new_state()
    expires_at = save_state(store, PROVIDER, state, verifier, {"kind": "callback", "redirect_uri": REDIRECT_URI, "label": label})
    return LoginStart(
        provider=PROVIDER,
        flow_id=state,
        kind="callback",
        expires_at=expires_at,
        authorize_url=authorize_url(config, state, challenge),
        instructions=(
            "Open the URL and sign in to ChatGPT. The browser then goes to a localhost:1455 page that may not load: "
            "copy that page's full address from the address bar and paste it here."
        ),
        warning=TERMS_WARNING,
    )


def _interval(value: Any, default: float = DEVICE_DEFAULT_INTERVAL) -> float:
    """The device endpoint sends the interval as a string of seconds (sometimes a number)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = default
    return max(DEVICE_MIN_INTERVAL, seconds)


def _post_json(http: httpx.Client, url: str, body: dict[str, Any], what: str) -> httpx.Response:
    try:
        return http.post(url, json=body, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise TransientProviderError(f"{what}: {url} is unreachable ({type(exc).__name__})") from None


def _start_device(store: Store, config: Config, label: str) -> LoginStart:
    with http_client(config) as http:
        response = _post_json(http, config.codex_auth_base + DEVICE_USERCODE_PATH, {"client_id": CLIENT_ID}, "device login")
    if response.status_code == 404:
        raise ProviderError("device login is not enabled for this ChatGPT host (404); use the browser login instead", status=404)
    if response.status_code != 200:
        raise token_error(response, "device login")
    data = mapping(json_or_none(response.content))
    user_code = data.get("user_code") or data.get("usercode")
    device_auth_id = data.get("device_auth_id")
    if not isinstance(user_code, str) or not isinstance(device_auth_id, str) or not user_code or not device_auth_id:
        raise ProviderError("device login: the ChatGPT host answered without a user code")
    interval = _interval(data.get("interval"))
    flow_id = new_state()
    flow = {"kind": "device", "device_auth_id": device_auth_id, "user_code": user_code, "interval": interval, "label": label}
    expires_at = save_state(store, PROVIDER, flow_id, "", flow)
    verification_uri = config.codex_auth_base + DEVICE_VERIFY_PATH
    return LoginStart(
        provider=PROVIDER,
        flow_id=flow_id,
        kind="device",
        expires_at=expires_at,
        user_code=user_code,
        verification_uri=verification_uri,
        interval=interval,
        instructions=f"On any device, open {verification_uri}, sign in to ChatGPT and enter the code {user_code}.",
        warning=TERMS_WARNING,
    )


def complete_login(store: Store, config: Config, flow_id: str, answer: dict[str, Any]) -> LoginResult:
    """Browser flow: answer {"callback_url": …} exchanges the code. Device flow: answer {} polls once."""
    verifier, flow = load_state(store, PROVIDER, flow_id)
    label = str(answer.get("label") or flow.get("label") or "")
    if flow.get("kind") == "device":
        return _poll_device(store, config, flow_id, flow, label)
    pasted = answer.get("callback_url") or answer.get("answer") or answer.get("code")
    if not isinstance(pasted, str) or not pasted.strip():
        raise InvalidInput("paste the full address of the page the browser landed on (callback_url)")
    code, state = parse_pasted(pasted)
    check_state(flow_id, state)
    with http_client(config) as http:
        tokens, identity = exchange_code(http, config, code, str(flow.get("redirect_uri") or REDIRECT_URI), verifier)
    result = store_account(store, tokens, identity, label=label)
    drop_state(flow_id)
    return result


def _poll_device(store: Store, config: Config, flow_id: str, flow: dict[str, Any], label: str) -> LoginResult:
    interval = _interval(flow.get("interval"))
    body = {"device_auth_id": flow.get("device_auth_id"), "user_code": flow.get("user_code")}
    with http_client(config) as http:
        try:
            response = _post_json(http, config.codex_auth_base + DEVICE_TOKEN_PATH, body, "device login")
        except TransientProviderError as exc:
            return LoginResult("pending", message=f"{exc}; trying again", interval=interval)
        if response.status_code in (403, 404):  # the user has not approved the code yet
            return LoginResult("pending", message="waiting for the code to be approved", interval=interval)
        if response.status_code == 429:
            interval += SLOW_DOWN_STEP
            update_state(store, flow_id, dict(flow, interval=interval))
            return LoginResult("pending", message="asked to slow down", interval=interval)
        if response.status_code != 200:
            raise token_error(response, "device login")
        grant = mapping(json_or_none(response.content))
        code, verifier = grant.get("authorization_code"), grant.get("code_verifier")
        if not isinstance(code, str) or not isinstance(verifier, str) or not code or not verifier:
            raise ProviderError("device login: the approval carried no authorization code")
        tokens, identity = exchange_code(http, config, code, config.codex_auth_base + DEVICE_REDIRECT_PATH, verifier)
    result = store_account(store, tokens, identity, label=label)
    drop_state(flow_id)
    return result
