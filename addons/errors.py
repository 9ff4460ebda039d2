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
