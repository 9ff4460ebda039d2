"""The client protocols Kleis speaks (Anthropic Messages, OpenAI Chat, OpenAI Responses) and the paths that carry them."""

from __future__ import annotations

import enum
from urllib.parse import unquote_plus

from core.redact import redact


class Protocol(enum.StrEnum):
    MESSAGES = "messages"  # Anthropic Messages: /v1/messages, /v1/messages/count_tokens
    CHAT = "chat"  # OpenAI Chat Completions: /v1/chat/completions
    RESPONSES = "responses"  # OpenAI Responses: /v1/responses


PROXIED_PATHS: dict[str, Protocol] = {
    "/v1/messages": Protocol.MESSAGES,
    "/v1/messages/count_tokens": Protocol.MESSAGES,
    "/v1/chat/completions": Protocol.CHAT,
    "/v1/responses": Protocol.RESPONSES,
}


def split_path(path: str) -> tuple[str, str]:
    """('/v1/messages', 'beta=true') from '/v1/messages?beta=true'; trailing slashes ignored."""
    base, _, query = path.partition("?")
    return (base.rstrip("/") or "/"), query


# Query parameters that carry credentials in some API's convention (`?key=`, `?api_key=`, `?access_token=`): a
# client that puts its key there must not have it forwarded (nor shown in the debug UI).
CREDENTIAL_PARAMS = frozenset(
    {"key", "api_key", "api-key", "apikey", "x-api-key", "access_token", "refresh_token", "id_token", "token", "auth", "authorization"}
    | {"bearer", "password", "secret", "client_secret"}
)


def clean_query(query: str) -> str:
    """The query without credential-like parameters: a name above, or a value shaped like a key or token."""
    kept = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        decoded = unquote_plus(value)
        if unquote_plus(name).strip().lower() in CREDENTIAL_PARAMS or redact(decoded) != decoded:
            continue
        kept.append(part)
    return "&".join(kept)


def protocol_for_path(path: str) -> Protocol | None:
    return PROXIED_PATHS.get(split_path(path)[0])


def error_protocol_for_path(path: str) -> Protocol:
    """Which error shape a caller of `path` expects: Anthropic on /v1/messages*, OpenAI elsewhere."""
    return Protocol.MESSAGES if split_path(path)[0].startswith("/v1/messages") else Protocol.CHAT


PROTOCOL_PATHS = {Protocol.MESSAGES: "/v1/messages", Protocol.CHAT: "/v1/chat/completions", Protocol.RESPONSES: "/v1/responses"}
