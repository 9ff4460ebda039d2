"""Kleis's own answers as mitmproxy responses: refusals in the caller's protocol shape, and local JSON."""

from __future__ import annotations

import json

from mitmproxy import http

from core.client_errors import Refusal, refusal_body, refusal_headers
from core.protocol import Protocol


def error_response(protocol: Protocol, refusal: Refusal, request_id: str | None = None) -> http.Response:
    return http.Response.make(refusal.status, refusal_body(protocol, refusal), refusal_headers(protocol, refusal, request_id))


def json_response(status: int, body: object, request_id: str | None = None) -> http.Response:
    headers = {"content-type": "application/json"}
    if request_id:
        headers["x-kleis-request-id"] = request_id
    return http.Response.make(status, json.dumps(body), headers)
