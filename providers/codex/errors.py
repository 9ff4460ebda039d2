"""What Codex errors mean: rate limits with their reset time, and the HTTP status of an error found in a stream."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from core.enums import SignalKind
from providers.base import Signal, classify_by_status, retry_after_seconds

# Codes (in error.type or error.code) that mean the account is out of quota or throttled (PI, Codex CLI).
RATE_LIMIT_CODES = frozenset({"usage_limit_reached", "usage_not_included", "rate_limit_exceeded", "insufficient_quota"})
OVERLOAD_CODES = frozenset({"server_is_overloaded", "service_unavailable_error", "service_unavailable", "slow_down"})
REQUEST_CODES = frozenset({"context_length_exceeded", "invalid_prompt", "invalid_request_error", "bad_request", "unsupported_parameter"})
_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)
# 400 {"detail": "The '<model>' model requires a newer version of Codex. Please upgrade to the latest app or CLI and try
# again."}: the backend gates models on the client version (reports from July–November 2026: gpt-5.6-* needs 0.144.0,
# gpt-6-astra 0.153.0, gpt-6-sol and gpt-6-luna 0.155.0; e.g. farion1231/cc-switch#7129, openai/codex-plugin-cc#309).
NEWER_VERSION = "requires a newer version of codex"
# 400 "The '<model>' model is not supported when using Codex with a ChatGPT account.": seen for models rolling out,
# and fixed in clients by a newer minimum version (VicBilibily/GCMP#420, 2026-09): about this request, not the account.
NOT_SUPPORTED_WITH_CHATGPT = "is not supported when using codex with a chatgpt account"
NOT_OFFERED = "not offered through Codex"  # the label of that refusal


def error_object(body: Any) -> dict[str, Any] | None:
    """The error inside a body or event: `error`, a failed response's `response.error`, or FastAPI's `detail`."""
    if not isinstance(body, dict):
        return None
    error: Any = body.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    response = body.get("response")
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        return dict(response["error"])
    if body.get("type") == "error" and isinstance(body.get("message"), str):
        return {key: body.get(key) for key in ("code", "message", "param") if body.get(key) is not None}
    if isinstance(body.get("detail"), str):
        return {"message": body["detail"]}
    return None


def codes(error: Mapping[str, Any]) -> set[str]:
    return {value for value in (error.get("type"), error.get("code")) if isinstance(value, str)}


def code_of(error: Mapping[str, Any]) -> str | None:
    """The most specific code: `code` when set, else `type`."""
    for field in ("code", "type"):
        if isinstance(error.get(field), str) and error[field]:
            return str(error[field])
    return None


def reset_at(error: Mapping[str, Any], headers: Mapping[str, str] | None = None, now: float | None = None) -> float | None:
    """When a limit ends: `resets_at` (unix seconds), `resets_in_seconds`, "try again in Ns", or Retry-After."""
    now = time.time() if now is None else now
    at = error.get("resets_at")
    if isinstance(at, (int, float)) and not isinstance(at, bool) and at > 0:
        return float(at) / 1000 if at > 1e12 else float(at)  # tolerate milliseconds
    seconds = error.get("resets_in_seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        return now + float(seconds)
    match = _TRY_AGAIN.search(str(error.get("message") or ""))
    if match:
        value = float(match.group(1))
        return now + (value / 1000 if match.group(2).lower() == "ms" else value)
    wait = retry_after_seconds(headers or {}, now)
    return now + wait if wait is not None else None


def describe(error: Mapping[str, Any]) -> str:
    code = code_of(error) or "error"
    plan = error.get("plan_type")
    return f"{code} ({plan} plan)" if isinstance(plan, str) and plan else code


def classify(status: int, headers: Mapping[str, str], body: Any) -> Signal:
    """429 usage_limit_reached / rate_limit_exceeded carry `resets_at`; everything else goes by status."""
    error = error_object(body) or {}
    if status == 429 and codes(error) & RATE_LIMIT_CODES:
        return Signal(SignalKind.RATE_LIMIT, f"{describe(error)} (429)", reset_at=reset_at(error, headers))
    if status == 401:
        return Signal(SignalKind.AUTH, "ChatGPT rejected the access token (401)")
    message = str(error.get("message") or "").lower()
    if status == 400 and NEWER_VERSION in message:
        return Signal(SignalKind.VERSION, "the model requires a newer Codex CLI version (400)", account_wide=False)
    if status == 400 and NOT_SUPPORTED_WITH_CHATGPT in message:
        return Signal(SignalKind.REQUEST, f"the model is {NOT_OFFERED} for this account (400)", account_wide=False)
    if status < 400 and codes(error) & RATE_LIMIT_CODES:  # a limit reported inside a 200 stream
        return Signal(SignalKind.RATE_LIMIT, f"{describe(error)} (in stream)", reset_at=reset_at(error, headers))
    if status < 400 and codes(error) & OVERLOAD_CODES:
        return Signal(SignalKind.OVERLOADED, f"{describe(error)} (in stream)")
    return classify_by_status(status, headers)


def status_for(error: Mapping[str, Any]) -> int:
    """The HTTP status a non-streaming client gets for an error the upstream sent inside its 200 stream."""
    found = codes(error)
    if found & RATE_LIMIT_CODES:
        return 429
    if found & OVERLOAD_CODES:
        return 503
    if found & REQUEST_CODES:
        return 400
    return 502
