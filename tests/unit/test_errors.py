"""Error bodies in each caller's shape, upstream errors reshaped, mitmproxy's own errors as JSON."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai

from addons.mitm_errors import TIMEOUT_MARKER, make_json_error_response
from core.client_errors import error_payload, universal_error_payload
from core.client_errors import upstream_error_body as shape_error
from core.protocol import Protocol


def test_anthropic_shape() -> None:
    assert error_payload(Protocol.MESSAGES, 401, "nope") == {"type": "error", "error": {"type": "authentication_error", "message": "nope"}}
    assert error_payload(Protocol.MESSAGES, 503, "busy")["error"]["type"] == "overloaded_error"


def test_openai_shape() -> None:
    body = error_payload(Protocol.CHAT, 403, "scope", code="model_not_allowed")
    assert body == {"error": {"message": "scope", "type": "permission_error", "param": None, "code": "model_not_allowed"}}


def test_upstream_errors_are_reshaped_for_the_caller() -> None:
    codex = shape_error(Protocol.RESPONSES, 400, b'{"detail":"Instructions are required"}')
    assert json.loads(codex)["error"]["message"] == "upstream error: Instructions are required"
    assert shape_error(Protocol.CHAT, 429, b'{"error":{"message":"slow down","type":"rate_limit_error"}}') is None
    anthropic_body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}'
    assert shape_error(Protocol.MESSAGES, 429, anthropic_body) is None
    html = shape_error(Protocol.MESSAGES, 502, b"<html>bad gateway</html>")
    assert json.loads(html)["type"] == "error" and "bad gateway" in json.loads(html)["error"]["message"]


def _sdk_error(status: int, body: bytes):
    """What each official SDK makes of an error body (parsed by the SDKs' own code)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    transport = httpx.MockTransport(handler)
    a = anthropic.Anthropic(api_key="x", base_url="http://kleis.test", http_client=httpx.Client(transport=transport), max_retries=0)
    o = openai.OpenAI(api_key="x", base_url="http://kleis.test/v1", http_client=httpx.Client(transport=transport), max_retries=0)
    try:
        a.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    except anthropic.APIStatusError as exc:
        a_err = exc
    try:
        o.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    except openai.APIStatusError as exc:
        o_err = exc
    return a_err, o_err


def test_universal_shape_is_understood_by_both_sdks() -> None:
    body = json.dumps(universal_error_payload(502, "Kleis could not reach the upstream", "upstream_unreachable")).encode()
    a_err, o_err = _sdk_error(502, body)
    assert "Kleis could not reach the upstream" in str(a_err)
    assert o_err.code == "upstream_unreachable" and o_err.body["message"] == "Kleis could not reach the upstream"


def test_mitmproxy_errors_become_json_and_timeouts_504() -> None:
    raw = make_json_error_response(502, "Connection refused")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502") and b"application/json" in head
    assert json.loads(body)["error"]["message"] == "Kleis could not reach the upstream: Connection refused"
    timeout = make_json_error_response(502, TIMEOUT_MARKER)
    assert timeout.startswith(b"HTTP/1.1 504") and b"upstream_timeout" in timeout


def test_kleis_refusals_a_retry_cannot_change_tell_clients_not_to_retry() -> None:
    from addons.errors import error_response
    from core.client_errors import Refusal

    for status in (400, 401, 403, 404, 405, 413):
        assert error_response(Protocol.MESSAGES, Refusal(status, "no")).headers["x-should-retry"] == "false", status
    for status in (429, 500, 503, 504):
        assert "x-should-retry" not in error_response(Protocol.CHAT, Refusal(status, "later")).headers, status
    failover = error_response(Protocol.MESSAGES, Refusal(503, "retry", headers={"retry-after": "1", "x-should-retry": "true"}))
    assert failover.headers["x-should-retry"] == "true"  # a refusal that asks for a retry keeps asking


def test_no_account_now_says_when_one_is_back_and_whether_retrying_helps() -> None:
    from core.client_errors import unavailable_headers

    assert unavailable_headers(None) == {"x-should-retry": "false"}  # a re-login or a disabled account: retries spin
    assert unavailable_headers(29.5) == {"retry-after": "30"}  # a short cooldown: the SDK's retry lands after it
    assert unavailable_headers(-0.2) == {"retry-after": "1"}  # a cooldown that has just ended: retry at once
    assert unavailable_headers(3 * 3600) == {"retry-after": "10801", "x-should-retry": "false"}  # a window hours away


def test_a_503_claude_code_would_retry_forever_is_not_called_an_overload() -> None:
    from core.client_errors import unavailable_headers, unavailable_type

    assert unavailable_type(Protocol.MESSAGES, unavailable_headers(None)) == "api_error"
    assert unavailable_type(Protocol.MESSAGES, unavailable_headers(10)) == "overloaded_error"  # worth retrying
    assert unavailable_type(Protocol.CHAT, unavailable_headers(None)) == "service_unavailable"
