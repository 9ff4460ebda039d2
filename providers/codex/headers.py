"""Upstream headers for the Codex backend: token, account id, a Codex-CLI-consistent identity, a session id."""

from __future__ import annotations

import functools
import platform
import uuid
from collections.abc import Mapping
from typing import Any

from core.config import Config
from providers.codex.constants import RESIDENCY_HEADER
from providers.codex.jwt import account_id_from_tokens
from store.accounts import AccountView

# Where a client names its session: headers (Codex CLI, OpenCode, PI spell it differently), then the body.
SESSION_HEADERS = ("session-id", "session_id", "x-session-id", "conversation_id", "conversation-id")
SESSION_BODY_FIELDS = ("prompt_cache_key",)

# Client headers that must not reach the backend: credentials and account ids Kleis sets itself, the other
# spelling of the session header, and API-platform or SDK fingerprints that no Codex CLI sends.
DROPPED_CLIENT_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "chatgpt-account-id",
    "session_id",
    "version",  # Codex CLI's own version: Kleis presents codex_client_version in the user-agent instead
    "openai-organization",
    "openai-project",
    RESIDENCY_HEADER,
)
DROPPED_CLIENT_PREFIXES = ("x-stainless-",)

_OS_NAMES = {"Darwin": "Mac OS", "Linux": "Linux", "Windows": "Windows"}


@functools.lru_cache(maxsize=8)
def user_agent(originator: str, version: str) -> str:
    """Codex CLI's shape, `<originator>/<version> (<os> <release>; <arch>)`, so the UA and originator agree."""
    system = platform.system() or "Linux"
    release = platform.release() or "unknown"
    arch = platform.machine() or "x86_64"
    return f"{originator}/{version} ({_OS_NAMES.get(system, system)} {release}; {arch})"


def lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def client_session_id(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """The client's own session (or prompt-cache) key, if it sent one."""
    names = lowered(headers)
    for name in SESSION_HEADERS:
        value = names.get(name, "").strip()
        if value:
            return value[:200]
    for field in SESSION_BODY_FIELDS:
        given = body.get(field)
        if isinstance(given, str) and given.strip():
            return given.strip()[:200]
    return None


def new_session_id() -> str:
    return str(uuid.uuid4())


def dropped_headers(headers: Mapping[str, str]) -> tuple[str, ...]:
    """Lower-cased names to remove from the forwarded request (apply_upstream compares lower-cased names)."""
    extra = tuple(name for name in lowered(headers) if name.startswith(DROPPED_CLIENT_PREFIXES))
    return DROPPED_CLIENT_HEADERS + extra


def account_id_of(account: AccountView) -> str | None:
    """The ChatGPT account id stored at login, else read from the access token itself."""
    stored = account.metadata.get("account_id") if isinstance(account.metadata, dict) else None
    return stored if isinstance(stored, str) and stored else account_id_from_tokens(None, account.access_token)


def upstream_headers(config: Config, account: AccountView, token_ref: str, session_id: str) -> dict[str, str]:
    headers = {
        "authorization": f"Bearer {token_ref}",
        "originator": config.codex_originator,
        "user-agent": user_agent(config.codex_originator, config.codex_client_version),
        "accept": "text/event-stream",
        "content-type": "application/json",
        "session-id": session_id,
    }
    account_id = account_id_of(account)
    if account_id:
        headers["chatgpt-account-id"] = account_id
    residency = account.metadata.get("residency") if isinstance(account.metadata, dict) else None
    if isinstance(residency, str) and residency and residency != "no_constraint":
        headers[RESIDENCY_HEADER] = residency  # OpenCode sends it for accounts with a compute residency
    return headers
