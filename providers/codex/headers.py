"""Upstream headers for the Codex backend: token, account id, a Codex-CLI-consistent identity, a session id.

A request from Codex CLI itself keeps its own `version`, `user-agent` and `originator` (the backend gates models on
the client version, so a current Codex CLI must reach it as what it is; when it names its version only in the
user-agent, as it does towards a custom model provider, the `version` header repeats that one); any other client is
presented as Codex CLI with one version in both the `version` header and the user-agent.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import uuid
from collections.abc import Mapping
from typing import Any

from core import versions
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
    "openai-organization",
    "openai-project",
    RESIDENCY_HEADER,
)
DROPPED_CLIENT_PREFIXES = ("x-stainless-",)
# The identity headers Kleis sets for other clients, and a Codex CLI request keeps as it sent them.
IDENTITY_HEADERS = ("originator", "user-agent", "version")

# Originators of Codex CLI itself (openai/codex codex-rs: `codex_cli_rs` by default, `codex-tui` for the interactive
# TUI, `codex_exec` for `codex exec`; CLIProxyAPI presents `codex-tui` since 2026-05).
CODEX_CLI_ORIGINATORS = ("codex_cli_rs", "codex-tui", "codex_exec")

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


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who sent the request, as far as the Codex identity goes."""

    codex_cli: bool  # Codex CLI itself: its identity headers pass unchanged
    version: str | None  # the version it named (Codex CLI's `version` header or user-agent), if any
    sent_version: bool = False  # it sent a `version` header (Codex CLI 0.171 does not, to a custom model provider)


def caller(headers: Mapping[str, str]) -> Caller:
    """Codex CLI names itself by its originator and a user-agent `<originator>/<version> (…)`."""
    names = lowered(headers)
    agent = names.get("user-agent", "")
    origin = names.get("originator", "").strip() or agent.partition("/")[0]
    if origin not in CODEX_CLI_ORIGINATORS or (agent and not agent.startswith(f"{origin}/")):
        return Caller(False, None)
    header = names.get("version", "").strip()
    named = header or agent.partition("/")[2].split(" ", 1)[0]
    return Caller(True, named if versions.is_version(named) else None, bool(header))


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


def identity_headers(originator: str, version: str) -> dict[str, str]:
    """Codex CLI's identity for a client that is not Codex CLI: one version in the header and the user-agent."""
    return {"originator": originator, "user-agent": user_agent(originator, version), "version": version}


def upstream_headers(account: AccountView, token_ref: str, session_id: str, identity: Mapping[str, str]) -> dict[str, str]:
    """Kleis's headers: auth and account, the identity (empty for Codex CLI, whose own headers pass), the session."""
    headers = {
        "authorization": f"Bearer {token_ref}",
        **identity,
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
