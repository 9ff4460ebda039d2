"""The proxy's refusals and failures end to end: keys and scopes (401/403), bad requests, body limits, no account,
an unreachable or silent upstream, upstream errors in the caller's shape, and hooks that fail closed."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from core.protocol import Protocol
from store import keys
from tests.fakes.base import Hang, Reply
from tests.support.proxy import CHAT, MESSAGES, RESPONSES, anthropic_error, openai_error, raw_request


def test_missing_unknown_revoked_expired_and_foreign_keys_get_401(kleis, client) -> None:
    kleis.add_account()
    row, expiring = keys.create_key("short", expires_days=1)
    from store.models import ApiKey

    ApiKey.update(expires_at=time.time() - 1).where(ApiKey.id == row.id).execute()
    time.sleep(0.6)
    cases = [
        ({}, "missing Kleis key"),
        ({"authorization": "Bearer kl_" + "x" * 43}, "unknown Kleis key"),
        ({"x-api-key": "sk-ant-api03-someone-elses"}, "not a Kleis key"),
        ({"x-api-key": expiring}, "expired"),
    ]
    for headers, fragment in cases:
        response = client.post("/v1/messages", json=MESSAGES, headers=headers)
        assert response.status_code == 401
        assert fragment in anthropic_error(response)["message"]
        chat = client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert chat.status_code == 401 and fragment in openai_error(chat)["message"]
    assert kleis.anthropic.received() == [] and kleis.openai.received() == []


def test_revoked_key_fails_within_one_second(kleis, client) -> None:
    kleis.add_account()
    assert client.post("/v1/messages", json=MESSAGES, headers=kleis.headers()).status_code == 200
    revoked_at = time.time()
    threading.Thread(target=keys.revoke_key, args=(kleis.key_id,)).start()
    while True:
        response = client.post("/v1/messages", json=MESSAGES, headers=kleis.headers())
        if response.status_code == 401:
            break
        assert time.time() - revoked_at < 1.0, "revoked key still accepted after 1 s"
    assert "revoked" in anthropic_error(response)["message"]
    assert time.time() - revoked_at < 1.0


def test_a_cached_key_stops_working_when_it_expires_with_no_store_change(kleis, client) -> None:
    kleis.add_account()
    expires_in = 3.0
    row, short = keys.create_key("short-lived", expires_days=expires_in / 86400)
    assert client.post("/v1/messages", json=MESSAGES, headers={"x-api-key": short}).status_code == 200  # cached now
    from store.models import ApiKey

    expires_at = ApiKey.get_by_id(row.id).expires_at
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    response = client.post("/v1/messages", json=MESSAGES, headers={"x-api-key": short})
    assert response.status_code == 401 and "expired" in anthropic_error(response)["message"]
    assert len(kleis.anthropic.received()) == 1


def test_new_key_works_at_once(kleis, client) -> None:
    kleis.add_account()
    _, fresh = keys.create_key("brand-new")
    assert client.post("/v1/messages", json=MESSAGES, headers={"x-api-key": fresh}).status_code == 200


def test_scope_refusals_are_403(kleis, client) -> None:
    kleis.add_account()
    _, other_provider = keys.create_key("codex-only", providers="codex")
    _, other_model = keys.create_key("small-only", models="loop-small")
    time.sleep(0.6)
    response = client.post("/v1/messages", json=MESSAGES, headers={"x-api-key": other_provider})
    assert response.status_code == 403 and "loop provider" in anthropic_error(response)["message"]
    response = client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": other_model})
    assert response.status_code == 403 and openai_error(response)["code"] == "model_not_allowed"
    allowed = client.post("/v1/chat/completions", json={**CHAT, "model": "loop/loop-small"}, headers={"x-api-key": other_model})
    assert allowed.status_code == 200


def test_a_model_scope_is_matched_on_the_serving_provider_not_the_clients_spelling(kleis, client) -> None:
    kleis.add_account()
    _, claude_only = keys.create_key("claude-only", models="claude/*")
    _, loop_only = keys.create_key("loop-only", models="loop/claude-*")
    time.sleep(0.6)
    for model in ("loop/claude/gpt-5.4", "loop/claude/x"):  # the loop provider serving `claude/…`: not Claude
        response = client.post("/v1/messages", json={**MESSAGES, "model": model}, headers={"x-api-key": claude_only})
        assert response.status_code == 403 and "served by loop" in anthropic_error(response)["message"], response.text
    assert client.post("/v1/messages", json={**MESSAGES, "model": "loop/claude-x"}, headers={"x-api-key": loop_only}).status_code == 200
    refused = client.post("/v1/messages", json={**MESSAGES, "model": "loop/claude/claude-x"}, headers={"x-api-key": loop_only})
    assert refused.status_code == 403
    assert len(kleis.anthropic.received()) == 1


def test_bad_requests(kleis, client) -> None:
    kleis.add_account()
    h = kleis.headers()
    malformed = client.post("/v1/messages", content=b'{"model": ', headers={**h, "content-type": "application/json"})
    assert malformed.status_code == 400 and "not valid JSON" in anthropic_error(malformed)["message"]
    not_object = client.post("/v1/chat/completions", content=b"[1,2]", headers=h)
    assert not_object.status_code == 400 and openai_error(not_object)["code"] == "invalid_json"
    no_model = client.post("/v1/responses", json={"input": "x"}, headers=h)
    assert no_model.status_code == 400 and openai_error(no_model)["code"] == "missing_model"
    unknown_path = client.post("/v1/embeddings", json=CHAT, headers=h)
    assert unknown_path.status_code == 404 and "/v1/embeddings" in openai_error(unknown_path)["message"]
    unknown_model = client.post("/v1/messages", json={**MESSAGES, "model": "mystery-9"}, headers=h)
    assert unknown_model.status_code == 404 and "GET /v1/models" in anthropic_error(unknown_model)["message"]
    wrong_method = client.get("/v1/messages", headers=h)
    assert wrong_method.status_code == 405
    for method, path, body in (("post", "/v1/messages", MESSAGES), ("Post", "/v1/chat/completions", CHAT), ("get", "/v1/models", {})):
        status, head, answer = raw_request(kleis.url, method, path, h, body)  # httpx would upper-case the method
        assert status == 405 and "case-sensitive" in answer["error"]["message"], (method, answer)
        assert b"x-should-retry: false" in head.lower()
    assert kleis.anthropic.received() == [] and kleis.openai.received() == []


def test_body_over_the_limit_is_413(live_kleis, fake_anthropic) -> None:
    live = live_kleis(max_body_bytes=2000)
    live.add_account()
    big = {**MESSAGES, "messages": [{"role": "user", "content": "x" * 5000}]}
    with httpx.Client(base_url=live.url, timeout=10) as client:
        declared = client.post("/v1/messages", json=big, headers=live.headers())
        assert declared.status_code == 413 and "KLEIS_MAX_BODY_BYTES" in anthropic_error(declared)["message"]

        def chunks():
            data = json.dumps(big).encode()
            for i in range(0, len(data), 1000):
                yield data[i : i + 1000]

        chunked = client.post("/v1/chat/completions", content=chunks(), headers=live.headers())
        assert chunked.status_code == 413 and openai_error(chunked)["code"] == "request_too_large"
        assert client.post("/v1/messages", json=MESSAGES, headers=live.headers()).status_code == 200
    assert fake_anthropic.received("/v1/messages")[-1].json["messages"][0]["content"] == "hi"
    assert len(fake_anthropic.received()) == 1


def test_no_account_is_503_naming_the_provider_and_the_fix(kleis, client) -> None:
    response = client.post("/v1/messages", json=MESSAGES, headers=kleis.headers())
    assert response.status_code == 503
    message = anthropic_error(response)["message"]
    assert "Loopback" in message and "accounts login loop" in message


def test_upstream_connect_failure_is_502_json(kleis, client) -> None:
    kleis.add_account()
    kleis.provider.bases[Protocol.CHAT] = "http://127.0.0.1:9"
    response = client.post("/v1/chat/completions", json=CHAT, headers=kleis.headers())
    assert response.status_code == 502
    assert openai_error(response)["code"] == "upstream_unreachable"
    assert "could not reach" in openai_error(response)["message"]


def test_upstream_timeout_is_504_in_the_callers_shape(live_kleis, fake_anthropic) -> None:
    live = live_kleis(upstream_timeout=1.0)
    live.add_account()
    fake_anthropic.enqueue("POST", "/v1/messages", Hang(10))
    started = time.time()
    with httpx.Client(base_url=live.url, timeout=10) as client:
        response = client.post("/v1/messages", json=MESSAGES, headers=live.headers())
        elapsed = time.time() - started
        assert response.status_code == 504 and 0.9 < elapsed < 3
        assert anthropic_error(response)["type"] == "timeout_error"
        again = client.post("/v1/messages", json=MESSAGES, headers=live.headers())
        assert again.status_code == 200  # the proxy is fine afterwards


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-len",
        b"HTTP/1.1 200 OK\r\ncontent-type: appl",
        b"HTTP/1.1 2",
    ],
    ids=["status line only", "headers cut mid-name", "headers cut mid-value", "status line cut"],
)
def test_an_upstream_that_never_finishes_its_headers_gets_504(live_kleis, fake_anthropic, head: bytes) -> None:
    live = live_kleis(upstream_timeout=1.0)
    live.add_account()
    fake_anthropic.enqueue("POST", "/v1/messages", Hang(10, head=head))
    started = time.time()
    with httpx.Client(base_url=live.url, timeout=10) as client:
        response = client.post("/v1/messages", json=MESSAGES, headers=live.headers())
        elapsed = time.time() - started
        assert response.status_code == 504 and 0.9 < elapsed < 3, response.text
        error = anthropic_error(response)
        assert error["type"] == "timeout_error" and "did not answer in time" in error["message"]
        assert "HTTP/1.1" not in response.text and "kleis-upstream-timeout" not in response.text
        assert client.post("/v1/messages", json=MESSAGES, headers=live.headers()).status_code == 200


def test_upstream_errors_pass_through_in_the_callers_shape(kleis, client) -> None:
    kleis.add_account()
    kleis.openai.enqueue("POST", "/v1/responses", Reply(400, {"detail": "Instructions are required"}))
    response = client.post("/v1/responses", json=RESPONSES, headers=kleis.headers())
    assert response.status_code == 400
    assert openai_error(response)["message"] == "upstream error: Instructions are required"
    kleis.anthropic.enqueue(
        "POST",
        "/v1/messages",
        Reply(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, {"retry-after": "3"}),
    )
    limited = client.post("/v1/messages", json=MESSAGES, headers=kleis.headers())
    assert limited.status_code == 429 and anthropic_error(limited)["message"] == "slow down"


def test_an_exception_in_a_hook_fails_closed(kleis, client, monkeypatch) -> None:
    kleis.add_account()

    def broken(*args, **kwargs):
        raise RuntimeError("bug in prepare")

    monkeypatch.setattr(kleis.provider, "prepare", broken)
    response = client.post("/v1/messages", json=MESSAGES, headers=kleis.headers())
    assert response.status_code == 500 and anthropic_error(response)["type"] == "api_error"
    import engine.pipeline

    monkeypatch.setattr(engine.pipeline, "check_route", broken)
    early = client.post("/v1/chat/completions", json=CHAT, headers=kleis.headers())
    assert early.status_code == 500 and openai_error(early)["code"] == "internal_error"
    assert kleis.anthropic.received() == [] and kleis.openai.received() == []


def test_an_exception_in_a_response_hook_fails_closed(kleis, client, monkeypatch) -> None:
    """A response Kleis cannot rewrite is a 500 in the caller's shape, never passed on half-processed."""
    kleis.add_account()
    import addons.responses

    def broken(*args, **kwargs):
        raise RuntimeError("bug in a response hook")

    monkeypatch.setattr(addons.responses, "make_stream_rewriter", broken)
    streamed = client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=kleis.headers())
    assert streamed.status_code == 500 and anthropic_error(streamed)["type"] == "api_error"
    assert "event:" not in streamed.text and "bug in" not in streamed.text
    monkeypatch.setattr(addons.responses, "aggregate_response", broken)
    plain = client.post("/v1/chat/completions", json=CHAT, headers=kleis.headers())
    assert plain.status_code == 500 and openai_error(plain)["code"] == "internal_error"
    assert len(kleis.anthropic.received()) == 1 and len(kleis.openai.received()) == 1  # they did reach the upstream
