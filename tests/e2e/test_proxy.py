"""The proxy end to end: a real mitmproxy listener with the addon, fake upstreams, httpx as the client (refusals and
failures are in test_proxy_refusals.py)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from store import keys
from tests.fakes.base import Reply
from tests.support.proxy import CHAT, MESSAGES, RESPONSES, anthropic_error, openai_error

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


def test_bad_bodies_get_a_clear_answer_and_big_numbers_and_surrogates_go_upstream_unchanged(kleis, client) -> None:
    kleis.add_account()
    headers = {**kleis.headers(), "content-type": "application/json"}
    deep = b'{"model": "claude-sonnet-4-5", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    nested = client.post("/v1/messages", content=deep, headers=headers)
    assert nested.status_code == 400 and "nested too deeply" in anthropic_error(nested)["message"]
    odd = json.dumps({**MESSAGES, "metadata": {"user_id": "u\ud800", "n": 2**80}}).encode()  # an escape the standard module keeps
    assert client.post("/v1/messages", content=odd, headers=headers).status_code == 200
    assert kleis.anthropic.last("/v1/messages").json["metadata"] == {"user_id": "u\ud800", "n": 2**80}
    assert len(kleis.anthropic.received()) == 1


def test_a_huge_string_and_a_million_numbers_are_forwarded_and_one_over_the_limit_is_413(kleis, client) -> None:
    kleis.add_account()
    headers = {**kleis.headers(), "content-type": "application/json"}
    limit = kleis.config.max_body_bytes
    one_string = {**MESSAGES, "messages": [{"role": "user", "content": "y" * (limit - 4096)}]}  # just under the limit
    assert client.post("/v1/messages", content=json.dumps(one_string).encode(), headers=headers).status_code == 200
    assert len(kleis.anthropic.last("/v1/messages").json["messages"][0]["content"]) == limit - 4096
    numbers = {**MESSAGES, "metadata": {"user_id": "u1", "values": list(range(1_000_000))}}
    assert client.post("/v1/messages", content=json.dumps(numbers).encode(), headers=headers).status_code == 200
    assert kleis.anthropic.last("/v1/messages").json["metadata"]["values"] == list(range(1_000_000))
    over = {**MESSAGES, "messages": [{"role": "user", "content": "y" * limit}]}
    refused = client.post("/v1/messages", content=json.dumps(over).encode(), headers=headers)
    assert refused.status_code == 413 and "KLEIS_MAX_BODY_BYTES" in anthropic_error(refused)["message"]
    assert len(kleis.anthropic.received()) == 2


def test_an_agent_sized_body_read_off_the_event_loop_goes_upstream_as_the_same_value(kleis, client) -> None:
    from engine.pipeline import OFF_LOOP_BYTES

    kleis.add_account()
    turns = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n}: ünïcode ✓ " + "x = 1.25\n" * 40} for n in range(1001)]
    body = {**MESSAGES, "messages": turns, "metadata": {"user_id": "u1"}}
    content = json.dumps(body).encode()
    assert len(content) > OFF_LOOP_BYTES
    response = client.post("/v1/messages", content=content, headers={**kleis.headers(), "content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert kleis.anthropic.last("/v1/messages").json["messages"] == turns


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
