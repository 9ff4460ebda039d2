"""Refusals raised on a request's path, and their responses in the caller's protocol shape."""

from __future__ import annotations

import json

from mitmproxy import http

from providers.protocol import Protocol, error_payload


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


RETRYABLE_4XX = (408, 409, 429)  # timeout, conflict, rate limit: worth retrying (429 says when, in retry-after)


RETRY_WORTH_WAITING = 60.0  # seconds: the SDKs wait out a retry-after up to a minute; past that a retry only spins


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


def error_response(protocol: Protocol, refusal: Refusal, request_id: str | None = None) -> http.Response:
    body = error_payload(protocol, refusal.status, refusal.message, code=refusal.code, type_=refusal.error_type)
    headers = {"content-type": "application/json", **refusal.headers}
    if 400 <= refusal.status < 500 and refusal.status not in RETRYABLE_4XX:
        # Kleis's own verdict, which a retry cannot change. The SDKs honour this header; Claude Code otherwise
        # retries a 401 (it takes it for an expired login) for minutes instead of showing the message.
        headers.setdefault("x-should-retry", "false")
    if request_id:
        headers["x-kleis-request-id"] = request_id
        if protocol is Protocol.MESSAGES:
            headers["request-id"] = request_id
    return http.Response.make(refusal.status, json.dumps(body), headers)


def json_response(status: int, body: object, request_id: str | None = None) -> http.Response:
    headers = {"content-type": "application/json"}
    if request_id:
        headers["x-kleis-request-id"] = request_id
    return http.Response.make(status, json.dumps(body), headers)
