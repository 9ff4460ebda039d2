"""mitmproxy's own errors: the responses it writes (upstream unreachable, malformed HTTP, body limit) as JSON
clients parse, and what a flow that ended in its `error` hook is recorded as.

mitmproxy answers these itself with an HTML page (`_http1.make_error_response`) and no hook can change it.
Kleis replaces that function (addons.compat) with one that writes a body both the Anthropic and the OpenAI SDKs read as an
error: the path of the request is not known at that point, so one shape serves both.
"""

from __future__ import annotations

import json

from mitmproxy import http, version
from mitmproxy.net.http import http1

from core.client_errors import universal_error_payload
from engine.context import Outcome

TIMEOUT_MARKER = "kleis-upstream-timeout"
CLIENT_DISCONNECTED = "Client disconnected."  # mitmproxy's message when the client hangs up (proxy/layers/http/_http1.py)


def describe(status: int, message: str) -> tuple[int, str, str]:
    """Status, human message and error code for one of mitmproxy's own errors."""
    if TIMEOUT_MARKER in message:  # the deadline's own cancel, or a parse error quoting its response (upstream_timeout)
        return 504, "the upstream did not answer in time (KLEIS_UPSTREAM_TIMEOUT)", "upstream_timeout"
    if status == 502:
        return 502, f"Kleis could not reach the upstream: {message}", "upstream_unreachable"
    if status == 413:
        return 413, "request body too large (KLEIS_MAX_BODY_BYTES)", "request_too_large"
    return status, message or "proxy error", "proxy_error"


def make_json_error_response(status_code: int, message: str = "") -> bytes:
    status, text, code = describe(status_code, message)
    response = http.Response.make(
        status,
        json.dumps(universal_error_payload(status, text, code)),
        http.Headers(Server=version.MITMPROXY, Connection="close", Content_Type="application/json"),
    )
    assembled: bytes = http1.assemble_response(response)
    return assembled


def classify_error(outcome: Outcome, message: str) -> None:
    """What a flow that ended in mitmproxy's `error` hook is recorded as, and what the client saw."""
    if message.startswith(CLIENT_DISCONNECTED):
        outcome.error_type = "client_disconnected"  # whatever the upstream did meanwhile
        if not outcome.streamed:
            outcome.status = 499  # nginx's "client closed request": nothing was sent
    elif outcome.streamed:
        outcome.error_type = "stream_interrupted"  # the client got the status and part of the stream
    elif message.startswith("Request body exceeds"):  # a response over the limit stays a 502 (upstream)
        outcome.status, outcome.error_type = 413, "request_too_large"
    elif outcome.first_byte_at is None:
        timed_out = TIMEOUT_MARKER in message
        outcome.status = outcome.status or (504 if timed_out else 502)
        outcome.error_type = "upstream_timeout" if timed_out else "upstream_unreachable"
    else:
        # The answer's headers came but its body was cut: nothing had reached the client, which gets mitmproxy's 502.
        outcome.status, outcome.error_type = 502, "upstream_cut"
