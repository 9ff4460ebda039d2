"""Errors as clients see them: the refusal Kleis raises on a request's path, and every error body it sends.

Each protocol's SDKs parse their own shape (Anthropic `{"type": "error", "error": {...}}`, OpenAI
`{"error": {...}}`); Kleis answers in the caller's shape, and in one shape both parse where the path is unknown.
"""

from __future__ import annotations

import json
from typing import Any

from core.protocol import Protocol
from core.sse import format_event

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

RETRYABLE_4XX = (408, 409, 429)  # timeout, conflict, rate limit: worth retrying (429 says when, in retry-after)
RETRY_WORTH_WAITING = 60.0  # seconds: the SDKs wait out a retry-after up to a minute; past that a retry only spins


class Refusal(Exception):
    """Kleis answers the request itself with this status and message; nothing goes upstream."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.error_type = error_type
        self.headers = headers or {}


def error_payload(protocol: Protocol, status: int, message: str, *, code: str | None = None, type_: str | None = None) -> dict[str, Any]:
    """The error body a client of `protocol` parses."""
    if protocol is Protocol.MESSAGES:
        return {"type": "error", "error": {"type": type_ or ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}
    return {"error": {"message": message, "type": type_ or OPENAI_TYPES.get(status, "server_error"), "param": None, "code": code}}


def stream_error_event(protocol: Protocol, refusal: Refusal) -> bytes:
    """The error a client reads in the middle of a stream (its SDK raises it): Anthropic's `error` event, the
    Responses API's `error` and `response.failed` events, a Chat Completions chunk carrying `error`."""
    payload = error_payload(protocol, refusal.status, refusal.message, code=refusal.code, type_=refusal.error_type)
    if protocol is Protocol.MESSAGES:
        return format_event(payload, "error")
    if protocol is Protocol.RESPONSES:
        error = {"type": "error", "code": refusal.code, "message": refusal.message, "param": None}
        failed = {"object": "response", "status": "failed", "output": [], "error": {"code": refusal.code, "message": refusal.message}}
        return format_event(error, "error") + format_event({"type": "response.failed", "response": failed}, "response.failed")
    return format_event(payload)


def universal_error_payload(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """One body both Anthropic and OpenAI clients parse, for errors raised where the path is unknown."""
    return {
        "type": "error",
        "error": {"type": ANTHROPIC_TYPES.get(status, "api_error"), "message": message, "code": code, "param": None},
    }


def refusal_body(protocol: Protocol, refusal: Refusal) -> bytes:
    return json.dumps(error_payload(protocol, refusal.status, refusal.message, code=refusal.code, type_=refusal.error_type)).encode()


def refusal_headers(protocol: Protocol, refusal: Refusal, request_id: str | None = None) -> dict[str, str]:
    """Headers of Kleis's own error answer: its content type, the refusal's own headers, and whether to retry."""
    headers = {"content-type": "application/json", **refusal.headers}
    if 400 <= refusal.status < 500 and refusal.status not in RETRYABLE_4XX:
        # Kleis's own verdict, which a retry cannot change. The SDKs honour this header; Claude Code otherwise
        # retries a 401 (it takes it for an expired login) for minutes instead of showing the message.
        headers.setdefault("x-should-retry", "false")
    if request_id:
        headers["x-kleis-request-id"] = request_id
        if protocol is Protocol.MESSAGES:
            headers["request-id"] = request_id
    return headers


def unavailable_headers(retry_in: float | None) -> dict[str, str]:
    """Headers of a 503 for "no account can serve this now": when one is known, how long until an account is back,
    and whether the client's automatic retries can help (not for a re-login, nor for a window hours away)."""
    headers = {"retry-after": str(max(1, int(retry_in) + 1))} if retry_in is not None else {}  # a cooldown just over: 1 s
    if not headers or (retry_in or 0) > RETRY_WORTH_WAITING:
        headers["x-should-retry"] = "false"
    return headers


def unavailable_type(protocol: Protocol, headers: dict[str, str]) -> str:
    """Anthropic's error type for such a 503: `overloaded_error` when a retry can help (Claude Code retries it
    whatever the headers say), `api_error` when not, so the agent shows the message instead of spinning."""
    if protocol is not Protocol.MESSAGES:
        return "service_unavailable"
    return "api_error" if headers.get("x-should-retry") == "false" else "overloaded_error"


def error_message_of(body: Any) -> str | None:
    """The message of an upstream error body in any of the shapes providers use."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, dict) and isinstance(error.get("code") or error.get("type"), str):
        return str(error.get("code") or error.get("type"))
    if isinstance(error, str):
        return error
    for field in ("detail", "message"):
        if isinstance(body.get(field), str):
            return str(body[field])
    return None


def in_client_shape(protocol: Protocol, body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    if protocol is Protocol.MESSAGES:
        return body.get("type") == "error" and isinstance(error.get("type"), str) and isinstance(error.get("message"), str)
    return isinstance(error.get("message"), str)


def upstream_error_body(protocol: Protocol, status: int, content: bytes, hint: str = "") -> bytes | None:
    """An upstream error body in the caller's protocol shape, with Kleis's `hint` after the provider's message;
    None when it already is in that shape and there is no hint."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if in_client_shape(protocol, body) and isinstance(body, dict):
        if not hint:
            return None
        body["error"]["message"] = f"{body['error']['message'].rstrip()} [{hint}]"
        return json.dumps(body).encode()
    message = (
        error_message_of(body) or (content.decode("utf-8", "replace").strip()[:500] if content else "") or f"upstream answered {status}"
    )
    code = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code") or body["error"].get("type")
    text = f"upstream error: {message}" + (f" [{hint}]" if hint else "")
    return json.dumps(error_payload(protocol, status, text, code=code)).encode()
