"""The proxy end to end: a real mitmproxy listener with the addon, fake upstreams, httpx as the client."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from core.protocol import Protocol
from store import keys
from tests.fakes.base import Hang, Reply
from tests.support.live import start_kleis

MESSAGES = {"model": "loop/claude-x", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/gpt-x", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "loop/gpt-x", "input": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def client(kleis):
    with httpx.Client(base_url=kleis.url, timeout=15) as http:
        yield http


def anthropic_error(response: httpx.Response) -> dict:
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}, body
    return body["error"]


def openai_error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    return body["error"]


# -- local endpoints ------------------------------------------------------------------------------


def test_healthz_needs_no_key_and_reports_the_store(kleis, client) -> None:
    kleis.add_account()
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "store": "reachable", "usable_accounts": {"loop": 1}}


def test_models_need_a_key_and_follow_its_scope(kleis, client) -> None:
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers=kleis.headers()).json()["data"] == []  # no usable account yet
    kleis.add_account()
    ids = [m["id"] for m in client.get("/v1/models", headers=kleis.headers()).json()["data"]]
    assert ids == ["loop/loop-small", "loop-small", "loop/loop-large", "loop-large"]
    _, narrow = keys.create_key("narrow", models="loop-small")
    time.sleep(0.6)
    narrow_ids = [m["id"] for m in client.get("/v1/models", headers={"x-api-key": narrow}).json()["data"]]
    assert narrow_ids == ["loop/loop-small", "loop-small"]
    one = client.get("/v1/models/loop-large", headers=kleis.headers())
    assert one.status_code == 200 and one.json()["id"] == "loop-large"
    missing = client.get("/v1/models/nope", headers=kleis.headers())
    assert missing.status_code == 404 and "/v1/models" in openai_error(missing)["message"]


# -- forwarding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "fake_path"),
    [
        ("/v1/messages", MESSAGES, "/v1/messages"),
        ("/v1/messages/count_tokens?beta=true", MESSAGES, "/v1/messages/count_tokens"),
        ("/v1/chat/completions", CHAT, "/v1/chat/completions"),
        ("/v1/responses", RESPONSES, "/v1/responses"),
    ],
)
def test_each_protocol_is_forwarded_with_the_account_token(kleis, client, path: str, body: dict, fake_path: str) -> None:
    account = kleis.add_account()
    response = client.post(path, json=body, headers=kleis.headers())
    assert response.status_code == 200, response.text
    fake = kleis.anthropic if fake_path.startswith("/v1/messages") else kleis.openai
    seen = fake.last(fake_path)
    assert seen.headers["authorization"] == f"Bearer {account.access_token}"
    assert seen.json["model"] == body["model"].removeprefix("loop/")
    assert seen.headers.get("accept-encoding") == "identity"
    assert "?beta=true" in seen.path if "beta" in path else "?" not in seen.path
    assert response.headers["x-kleis-request-id"].startswith("req_")


def test_client_key_never_goes_upstream_and_token_never_comes_back(kleis, client) -> None:
    account = kleis.add_account()
    for headers in (kleis.headers(), {"x-api-key": kleis.key}, {"x-api-key": kleis.key, "authorization": f"Bearer {kleis.key}"}):
        response = client.post("/v1/messages", json=MESSAGES, headers=headers)
        assert response.status_code == 200, response.text
        seen = kleis.anthropic.last("/v1/messages")
        upstream_view = json.dumps(seen.headers) + seen.body.decode()
        assert kleis.key not in upstream_view and "x-api-key" not in seen.headers
        client_view = json.dumps(dict(response.headers)) + response.text
        assert account.access_token not in client_view and account.refresh_token not in client_view
        assert "kleis-secret-ref" not in upstream_view


ACCOUNT_HEADERS = {
    "set-cookie": "__cf_bm=abc; path=/; HttpOnly",
    "anthropic-organization-id": "org-1234",
    "openai-organization": "user-abcd",
    "openai-project": "proj_1",
    "server": "cloudflare",
    "cf-ray": "8f00-SJC",
    "x-envoy-upstream-service-time": "12",
}
CLIENT_HEADERS = {
    "request-id": "req_up_1",
    "x-request-id": "req_up_2",
    "anthropic-ratelimit-requests-remaining": "99",
    "anthropic-ratelimit-unified-reset": "1700000000",
    "x-ratelimit-remaining-tokens": "1000",
    "x-codex-primary-used-percent": "12",
    "retry-after": "7",
}


@pytest.mark.parametrize("stream", [False, True])
def test_only_allowlisted_upstream_headers_reach_the_client(kleis, client, stream: bool) -> None:
    kleis.add_account()
    from tests.fakes.base import Stream, sse

    answer = Reply(
        200, {"id": "m", "type": "message", "role": "assistant", "content": [], "usage": {}}, {**ACCOUNT_HEADERS, **CLIENT_HEADERS}
    )
    if stream:
        answer = Stream([sse("message_stop", {"type": "message_stop"})], headers={**ACCOUNT_HEADERS, **CLIENT_HEADERS})
    kleis.anthropic.enqueue("POST", "/v1/messages", answer)
    response = client.post("/v1/messages", json={**MESSAGES, "stream": stream}, headers=kleis.headers())
    assert response.status_code == 200
    for name in ACCOUNT_HEADERS:
        assert name not in response.headers, name
    for name, value in CLIENT_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["x-kleis-request-id"].startswith("req_")


def test_a_key_in_the_query_string_is_not_forwarded(kleis, client) -> None:
    kleis.add_account()
    query = f"beta=true&key={kleis.key}&api_key=abc&x=1&access_token=tok&sig=kl_abcdefghijklmnop&Authorization=Bearer%20zz"
    response = client.post(f"/v1/messages?{query}", json=MESSAGES, headers=kleis.headers())
    assert response.status_code == 200
    seen = kleis.anthropic.last("/v1/messages")
    assert seen.query == {"beta": "true", "x": "1"}, seen.path
    assert kleis.key not in seen.path


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_non_finite_numbers_in_a_body_are_400(kleis, client, number: str) -> None:
    kleis.add_account()
    content = json.dumps(MESSAGES).replace('"max_tokens": 20', f'"max_tokens": 20, "temperature": {number}').encode()
    response = client.post("/v1/messages", content=content, headers={**kleis.headers(), "content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in anthropic_error(response)["message"], response.text
    assert kleis.anthropic.received() == []


def test_streams_arrive_event_by_event_for_every_protocol(kleis, client) -> None:
    kleis.add_account()
    kleis.anthropic.stream_split = 7  # the upstream cuts every event into 7-byte writes
    with client.stream("POST", "/v1/messages", json={**MESSAGES, "stream": True}, headers=kleis.headers()) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop" and "content_block_delta" in names
    with client.stream(
        "POST", "/v1/chat/completions", json={**CHAT, "stream": True, "stream_options": {"include_usage": True}}, headers=kleis.headers()
    ) as response:
        chat = "".join(response.iter_text())
    assert chat.rstrip().endswith("data: [DONE]") and '"usage"' in chat
    with client.stream("POST", "/v1/responses", json={**RESPONSES, "stream": True}, headers=kleis.headers()) as response:
        responses = "".join(response.iter_text())
    assert "event: response.completed" in responses


def test_tool_names_are_restored_in_json_and_in_split_streams(kleis, client) -> None:
    kleis.add_account()
    body = {**MESSAGES, "tools": [{"name": "read_file", "input_schema": {"type": "object"}}]}
    plain = client.post("/v1/messages", json=body, headers=kleis.headers()).json()
    assert [b.get("name") for b in plain["content"] if b["type"] == "tool_use"] == ["read_file"]
    assert kleis.anthropic.last("/v1/messages").json["tools"][0]["name"] == "up_read_file"
    kleis.anthropic.stream_split = 3
    with client.stream("POST", "/v1/messages", json={**body, "stream": True}, headers=kleis.headers()) as response:
        text = "".join(response.iter_text())
    assert '"name":"read_file"' in text and "up_read_file" not in text


def test_expired_token_is_refreshed_before_forwarding(kleis, client) -> None:
    account = kleis.add_account(expires_in=-10)
    response = client.post("/v1/messages", json=MESSAGES, headers=kleis.headers())
    assert response.status_code == 200, response.text
    assert kleis.oauth.refresh_calls == 1
    used = kleis.anthropic.last("/v1/messages").headers["authorization"]
    assert used != f"Bearer {account.access_token}" and used.removeprefix("Bearer ") in kleis.oauth.issued_access


# -- refusals and errors, each in the caller's shape ---------------------------------------------


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


def raw_request(url: str, method: str, path: str, headers: dict[str, str], body: dict) -> tuple[int, bytes, dict]:
    """One request written byte for byte (method spelled as given); the status, the head and the JSON answer."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", f"content-length: {len(data)}", "connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + data)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, json.loads(rest)


@pytest.mark.e2e
def test_body_over_the_limit_is_413(store, config, fake_oauth, fake_anthropic, fake_openai) -> None:
    live = start_kleis(store, config.replace(max_body_bytes=2000), fake_oauth, fake_anthropic, fake_openai)
    try:
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
    finally:
        live.proxy.stop()


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


@pytest.mark.e2e
def test_upstream_timeout_is_504_in_the_callers_shape(store, config, fake_oauth, fake_anthropic, fake_openai) -> None:
    live = start_kleis(store, config.replace(upstream_timeout=1.0), fake_oauth, fake_anthropic, fake_openai)
    try:
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
    finally:
        live.proxy.stop()


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
    import addons.pipeline

    monkeypatch.setattr(addons.pipeline, "check_route", broken)
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


def test_no_database_query_per_request_in_the_steady_state(kleis, client) -> None:
    kleis.add_account()
    assert client.post("/v1/messages", json=MESSAGES, headers=kleis.headers()).status_code == 200
    from store.models import database

    follower = kleis.proxy.services.follower
    follower.interval = 3600  # park the follower's polling so only request-path queries remain
    time.sleep(0.6)
    executed = []
    real = database.obj.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        executed.append(sql)
        return real(sql, params, *args, **kwargs)

    database.obj.execute_sql = counting
    try:
        for _ in range(30):
            assert client.post("/v1/messages", json=MESSAGES, headers=kleis.headers()).status_code == 200
            assert client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=kleis.headers()).status_code == 200
    finally:
        database.obj.execute_sql = real
    assert executed == []


def test_the_base_url_answers_an_agents_probe_without_a_key(kleis, client) -> None:
    """Claude Code sends `HEAD /` when it starts: a 200 (it was a 404, with a body after a HEAD)."""
    index = client.get("/")
    assert index.status_code == 200 and index.json()["service"] == "kleis" and "/v1/messages" in index.json()["endpoints"]
    assert client.head("/").status_code == 200 and client.head("/healthz").status_code == 200
    assert client.head("/v1/models").status_code == 401  # still needs a key
    assert client.head("/v1/models", headers=kleis.headers()).status_code == 200
    refused = client.post("/", json={})
    assert refused.status_code == 405 and "only answers GET" in refused.text


def test_a_head_answer_has_no_body_and_the_connection_stays_in_step(kleis) -> None:
    """httpx never reads a body after a HEAD, so it cannot see one that was sent: read the raw bytes."""
    host, port = kleis.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.settimeout(0.5)
        for path, status in (("/", 200), ("/healthz", 200), ("/v1/messages", 405), ("/v1/models", 401), ("/nowhere", 404)):
            conn.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            status_line, _, rest = head.partition(b"\r\n")
            assert status_line.split()[1] == str(status).encode(), (path, status_line)
            after = rest.split(b"\r\n\r\n", 1)[1]
            try:
                after += conn.recv(4096)  # anything that follows the headers would be a body
            except TimeoutError:
                pass
            assert after == b"", (path, after)
            assert b"content-length: 0" not in head.lower()  # the length a GET would have
        conn.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())  # the same connection still works
        reply = b""
        while b"}" not in reply:
            reply += conn.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200") and b'"status": "ok"' in reply
