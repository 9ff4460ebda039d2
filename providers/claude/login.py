"""Adding Claude accounts: the PKCE paste login and importing Claude Code's or OpenCode's credentials file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from core.config import Config
from core.enums import ProviderName
from core.exceptions import InvalidInput, ProviderError, ReauthRequired
from providers import oauth
from providers.claude import tokens
from providers.claude.tokens import CLIENT_ID, SCOPES
from store.accounts import TokenSet
from store.db import Store

PROVIDER = ProviderName.CLAUDE
TERMS_WARNING = (
    "Anthropic's terms restrict using Claude Free/Pro/Max subscription credentials through third-party tools; "
    "Anthropic has said third parties may not route requests through them on behalf of users. Routing a Claude "
    "subscription through Kleis can breach those terms and may get the account limited or banned. "
    "You use it at your own risk."
)
ANSWER_FIELDS = ("answer", "pasted", "code", "callback_url", "url")
INSTRUCTIONS = (
    "Open the URL, sign in to your Claude account and approve. The page then shows a code "
    f"(code#state): paste it here. The login expires in {oauth.LOGIN_TTL // 60} minutes."
)


def authorize_url(config: Config, challenge: str, state: str) -> str:
    params = {
        "code": "true",
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": tokens.redirect_uri(config),
        "scope": SCOPES,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    return f"{config.claude_authorize_url}?{urlencode(params)}"


def start_login(store: Store, config: Config, *, label: str = "", **options: Any) -> oauth.LoginStart:
    verifier, challenge = oauth.pkce_pair()
    state = oauth.new_state()
    expires_at = oauth.save_state(store, PROVIDER, state, verifier, {"redirect_uri": tokens.redirect_uri(config), "label": label})
    return oauth.LoginStart(
        provider=PROVIDER,
        flow_id=state,
        kind="paste",
        expires_at=expires_at,
        authorize_url=authorize_url(config, challenge, state),
        instructions=INSTRUCTIONS,
        warning=TERMS_WARNING,
    )


def pasted_text(answer: dict[str, Any]) -> str:
    for field in ANSWER_FIELDS:
        if isinstance(answer.get(field), str) and answer[field].strip():
            return str(answer[field])
    raise InvalidInput("paste the code the Claude page showed (code#state, the callback URL, or code=…&state=…)")


def complete_login(store: Store, config: Config, flow_id: str, answer: dict[str, Any]) -> oauth.LoginResult:
    """Exchange the pasted code of the login `flow_id` for tokens and store the account."""
    code, pasted_state = oauth.parse_pasted(pasted_text(answer))
    oauth.check_state(flow_id, pasted_state)
    verifier, data = oauth.load_state(store, PROVIDER, flow_id)
    redirect = data.get("redirect_uri") or tokens.redirect_uri(config)
    with oauth.http_client(config) as client:
        answer_json = tokens.post_token_sync(client, config, tokens.exchange_body(code, flow_id, verifier, redirect), "Claude login")
        token_set = tokens.token_set(answer_json)
        identity = tokens.identity_from(answer_json) or tokens.fetch_profile(client, config, token_set.access_token or "")
    if identity is None:
        raise ProviderError("Claude issued tokens but did not say which account they belong to; try the login again")
    oauth.drop_state(flow_id)
    tokens_with_identity = dataclasses.replace(token_set, metadata={**token_set.metadata, **identity.metadata()})
    label = str(answer.get("label") or data.get("label") or "")
    return oauth.finish(store, PROVIDER, identity.account_uuid, tokens_with_identity, email=identity.email, label=label, how="login")


# -- import -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImportedLogin:
    source: str  # which tool's file it was
    access_token: str
    refresh_token: str
    expires_at: float


def _epoch_seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return value / 1000 if value > 1e11 else float(value)  # both tools write milliseconds


def _field(entry: dict[str, Any], name: str, where: str, path: Path) -> Any:
    value = entry.get(name)
    if value is None or value == "" or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"{path}: {where}.{name} is missing; nothing imported")
    return value


def read_credentials_file(path: Path) -> ImportedLogin:
    """Claude Code's `.credentials.json` (claudeAiOauth) or OpenCode's `auth.json` (anthropic); all fields required."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be read ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); nothing imported") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a credentials file (expected a JSON object)")
    if isinstance(data.get("claudeAiOauth"), dict):
        entry, where, names, source = data["claudeAiOauth"], "claudeAiOauth", ("accessToken", "refreshToken", "expiresAt"), "Claude Code"
    elif isinstance(data.get("anthropic"), dict):
        entry, where, names, source = data["anthropic"], "anthropic", ("access", "refresh", "expires"), "OpenCode"
        if entry.get("type") not in (None, "oauth"):
            raise InvalidInput(f"{path}: the anthropic entry is of type {entry.get('type')!r}, not an OAuth login; nothing imported")
    else:
        raise InvalidInput(f"{path} is neither Claude Code's .credentials.json (claudeAiOauth) nor OpenCode's auth.json (anthropic)")
    access, refresh, expires = (_field(entry, name, where, path) for name in names)
    if not isinstance(access, str) or not isinstance(refresh, str):
        raise InvalidInput(f"{path}: {where} tokens must be strings; nothing imported")
    expires_at = _epoch_seconds(expires)
    if expires_at is None:
        raise InvalidInput(f"{path}: {where}.{names[2]} is not a time in milliseconds; nothing imported")
    return ImportedLogin(source, access.strip(), refresh.strip(), expires_at)


# A refresh during import rotates the file's refresh token: from then on only the new pair works. It is kept here
# (encrypted, keyed by a hash of the file's refresh token) before anything else can fail, so an import that cannot
# finish (the identity lookup fails) is finished by running it again instead of losing the login.
PENDING_PROVIDER = "claude-import"  # not "claude": these rows are not logins in progress
PENDING_TTL = 24 * 3600


def _pending_key(refresh_token: str) -> str:
    return "claude-import:" + hashlib.sha256(refresh_token.encode()).hexdigest()[:48]


def _load_pending(store: Store, refresh_token: str) -> TokenSet | None:
    try:
        _, data = oauth.load_state(store, PENDING_PROVIDER, _pending_key(refresh_token))
    except InvalidInput:
        return None
    return TokenSet(data["access_token"], data["refresh_token"], data["expires_at"], data.get("metadata") or {})


def _keep_pending(store: Store, refresh_token: str, token_set: TokenSet) -> None:
    key = _pending_key(refresh_token)
    with store.db.atomic():
        oauth.drop_state(key)
        oauth.save_state(store, PENDING_PROVIDER, key, data=dataclasses.asdict(token_set), ttl=PENDING_TTL)


def import_credentials(store: Store, config: Config, path: str | Path | None = None, **options: Any) -> oauth.LoginResult:
    """Store the login of another tool's file. The account is identified through Claude's profile endpoint, or,
    when the access token has expired, by refreshing it (the other tool then has to log in again)."""
    if path is None:
        raise InvalidInput("give the credentials file to import (--file PATH)")
    imported = read_credentials_file(Path(path).expanduser())
    pending = _load_pending(store, imported.refresh_token)
    token_set = pending or TokenSet(imported.access_token, imported.refresh_token, imported.expires_at)
    refreshed = pending is not None
    with oauth.http_client(config) as client:
        identity = None
        if (token_set.expires_at or 0) > time.time() + 60:
            identity = _identify(client, config, token_set, refreshed, path)
        if identity is None:
            try:
                answer = tokens.post_token_sync(client, config, tokens.refresh_body(token_set.refresh_token or ""), "Claude token refresh")
            except ReauthRequired as exc:
                if pending is not None:  # only a pair this run loaded: a concurrent import may just have kept one
                    oauth.drop_state(_pending_key(imported.refresh_token))
                raise InvalidInput(
                    f"{path}: its login is no longer valid ({exc}); log in with `python kleis.py accounts login claude`"
                ) from None
            fresh = tokens.token_set(answer)
            token_set, refreshed = dataclasses.replace(fresh, refresh_token=fresh.refresh_token or token_set.refresh_token), True
            _keep_pending(store, imported.refresh_token, token_set)
            identity = tokens.identity_from(answer) or _identify(client, config, token_set, refreshed, path)
    if identity is None:
        raise ProviderError(f"Claude did not say which account the login in {path} belongs to; nothing imported" + _kept(refreshed))
    token_set = dataclasses.replace(token_set, metadata={**token_set.metadata, **identity.metadata(), "imported_from": imported.source})
    result = oauth.finish(store, PROVIDER, identity.account_uuid, token_set, email=identity.email, how="import")
    oauth.drop_state(_pending_key(imported.refresh_token))
    if refreshed:
        note = f" (its token had expired: Kleis refreshed it, so {imported.source} has to log in again)"
        result = dataclasses.replace(result, message=result.message + note)
    return result


def _kept(refreshed: bool) -> str:
    if not refreshed:
        return ""
    return f" (Kleis refreshed the login and keeps the new tokens for {PENDING_TTL // 3600} h: run the same import again to finish it)"


def _identify(client: httpx.Client, config: Config, token_set: TokenSet, refreshed: bool, path: str | Path) -> tokens.Identity | None:
    try:
        return tokens.fetch_profile(client, config, token_set.access_token or "")
    except ProviderError as exc:
        if not refreshed:
            raise
        raise type(exc)(f"{exc}; nothing imported from {path} yet" + _kept(refreshed), status=exc.status, code=exc.code) from None
