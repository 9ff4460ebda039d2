"""The client protocols Kleis speaks (Anthropic Messages, OpenAI Chat, OpenAI Responses) and their error shapes."""

from __future__ import annotations

import enum
import json
from typing import Any


class Protocol(str, enum.Enum):
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


def protocol_for_path(path: str) -> Protocol | None:
    return PROXIED_PATHS.get(split_path(path)[0])


def error_protocol_for_path(path: str) -> Protocol:
    """Which error shape a caller of `path` expects: Anthropic on /v1/messages*, OpenAI elsewhere."""
    return Protocol.MESSAGES if split_path(path)[0].startswith("/v1/messages") else Protocol.CHAT


# Anthropic error types by status (https://docs.anthropic.com/en/api/errors); OpenAI uses similar words.
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_payload(protocol: Protocol, status: int, message: str, *, code: str | None = None, type_: str | None = None) -> dict[str, Any]:
    """The error body a client of `protocol` parses."""
    if protocol is Protocol.MESSAGES:
        return {"type": "error", "error": {"type": type_ or ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}
    return {"error": {"message": message, "type": type_ or OPENAI_TYPES.get(status, "server_error"), "param": None, "code": code}}


def universal_error_payload(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """One body both Anthropic and OpenAI clients parse, for errors raised where the path is unknown."""
    return {
        "type": "error",
        "error": {"type": ANTHROPIC_TYPES.get(status, "api_error"), "message": message, "code": code, "param": None},
    }


def error_bytes(protocol: Protocol, status: int, message: str, **kwargs: Any) -> bytes:
    return json.dumps(error_payload(protocol, status, message, **kwargs)).encode()


def error_message_of(body: Any) -> str | None:
    """The message of an upstream error body in any of the shapes providers use."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, dict) and isinstance(error.get("code") or error.get("type"), str):
        return str(error.get("code") or error.get("type"))
    if isinstance(error, str):
        return error
    for field in ("detail", "message"):
        if isinstance(body.get(field), str):
            return body[field]
    return None
