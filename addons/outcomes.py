"""How a request that ended in mitmproxy's `error` hook is recorded, and what its client saw."""

from __future__ import annotations

from addons import mitm_errors
from engine.context import Outcome

CLIENT_DISCONNECTED = "Client disconnected."  # mitmproxy's message when the client hangs up (proxy/layers/http/_http1.py)


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
        timed_out = mitm_errors.TIMEOUT_MARKER in message
        outcome.status = outcome.status or (504 if timed_out else 502)
        outcome.error_type = "upstream_timeout" if timed_out else "upstream_unreachable"
    else:
        # The answer's headers came but its body was cut: nothing had reached the client, which gets mitmproxy's 502.
        outcome.status, outcome.error_type = 502, "upstream_cut"
