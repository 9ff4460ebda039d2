"""Usage accounting: one durable event per request, normalised tokens, off the hot path.
Here the parts that need a listener; the rest: tests/unit/test_usage.py."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

import addons.responses
from addons.services import Parts
from engine.usage_recorder import UsageRecorder
from store import usage as usage_store
from store.models import ApiKey, UsageEvent
from tests.fakes.base import Hang, Reply, Stream

MESSAGES = {"model": "loop/claude-u", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/gpt-u", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "loop/gpt-u", "input": "hi"}


@pytest.fixture
def live(live_kleis):
    recorder = UsageRecorder(interval=0.05)
    running = live_kleis(Parts(usage=recorder))
    running.recorder = recorder
    running.add_account()
    return running


def wait_for_events(count: int, timeout: float = 10.0) -> list[UsageEvent]:
    deadline = time.time() + timeout
    while UsageEvent.select().count() < count and time.time() < deadline:
        time.sleep(0.02)
    return list(UsageEvent.select().order_by(UsageEvent.id))


def tokens(event: UsageEvent) -> tuple[int, int, int, int, int]:
    return (event.input_tokens, event.cache_read_tokens, event.cache_write_tokens, event.output_tokens, event.reasoning_tokens)


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        # Anthropic reports input without cache: 12 uncached, 100 read, 20 written, 7 out.
        ("/v1/messages", MESSAGES, (12, 100, 20, 7, 0)),
        # Chat reports 50 prompt tokens of which 30 cached: 20 uncached + 30 read; 9 out, 4 of them reasoning.
        ("/v1/chat/completions", {**CHAT, "stream_options": {"include_usage": True}}, (20, 30, 0, 9, 4)),
        # Responses reports 80 input of which 64 cached: 16 + 64; 15 out, 5 reasoning.
        ("/v1/responses", RESPONSES, (16, 64, 0, 15, 5)),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_exact_tokens_for_each_protocol(live, path: str, body: dict, expected: tuple, stream: bool) -> None:
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post(path, json={**body, "stream": stream}, headers=live.headers())
        assert response.status_code == 200
        request_id = response.headers["x-kleis-request-id"]
    (event,) = wait_for_events(1)
    assert event.request_id == request_id and event.streamed is stream and not event.incomplete
    assert tokens(event) == expected
    assert event.status == 200 and event.provider == "loop" and event.model == body["model"] and event.upstream_model == body["model"][5:]
    assert event.key_id == live.key_id and event.account_id is not None
    assert event.ttfb_ms is not None and event.latency_ms >= event.ttfb_ms
    assert json.loads(event.raw_usage)  # the provider's own usage object is kept


def test_an_abandoned_stream_records_what_was_seen(live) -> None:
    live.anthropic.stream_delay = 0.2
    with httpx.Client(base_url=live.url, timeout=20) as client:
        with client.stream("POST", "/v1/messages", json={**MESSAGES, "stream": True}, headers=live.headers()) as response:
            for line in response.iter_lines():
                if "message_start" in line and line.startswith("data:"):
                    break  # the client walks away after the first event
    (event,) = wait_for_events(1)
    assert event.streamed and event.incomplete and event.error_type == "client_disconnected" and event.status == 200
    assert (event.input_tokens, event.cache_read_tokens) == (12, 100) and event.output_tokens == 1


def test_a_client_that_leaves_before_the_upstream_answers_is_client_disconnected(live) -> None:
    live.anthropic.enqueue("POST", "/v1/messages", Hang(5))
    with httpx.Client(base_url=live.url, timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/v1/messages", json=MESSAGES, headers=live.headers())  # the client gives up after 0.5 s
    (event,) = wait_for_events(1)
    assert (event.status, event.error_type, event.incomplete) == (499, "client_disconnected", True)
    assert event.latency_ms < 4000  # recorded when the client left, not when the upstream gave up


def test_a_non_streaming_answer_cut_by_the_upstream_is_a_502(live) -> None:
    events = [b'event: message_start\ndata: {"type":"message_start"}\n\n'] * 4
    live.anthropic.enqueue("POST", "/v1/messages", Stream(events, cut_after=2))
    with httpx.Client(base_url=live.url, timeout=20) as client:
        response = client.post("/v1/messages", json=MESSAGES, headers=live.headers())  # not streamed: buffered
    assert response.status_code == 502
    (event,) = wait_for_events(1)
    assert (event.status, event.error_type, event.incomplete, event.streamed) == (502, "upstream_cut", True, False)


def test_an_upstream_cut_stream_is_incomplete(live) -> None:
    events = [
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}\n\n',
    ] * 2
    live.anthropic.enqueue("POST", "/v1/messages", Stream(events, cut_after=2))
    with httpx.Client(base_url=live.url, timeout=20) as client:
        try:
            with client.stream("POST", "/v1/messages", json={**MESSAGES, "stream": True}, headers=live.headers()) as response:
                list(response.iter_lines())
        except httpx.HTTPError:
            pass
    (event,) = wait_for_events(1)
    assert event.incomplete and event.input_tokens == 5


@pytest.mark.parametrize(
    ("path", "body", "events"),
    [
        (
            "/v1/messages",
            {**MESSAGES, "stream": True},
            [
                b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}\n\n',
            ],
        ),
        ("/v1/chat/completions", {**CHAT, "stream": True}, [b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n']),
        (
            "/v1/responses",
            {**RESPONSES, "stream": True},
            [b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"x"}\n\n'],
        ),
    ],
)
def test_a_stream_closed_cleanly_before_its_end_marker_is_incomplete(live, path: str, body: dict, events: list) -> None:
    fake = live.anthropic if path == "/v1/messages" else live.openai
    fake.enqueue("POST", path, Stream(events))  # a clean end of the chunked body, but no message_stop / [DONE] / completed
    with httpx.Client(base_url=live.url, timeout=20) as client:
        with client.stream("POST", path, json=body, headers=live.headers()) as response:
            assert response.status_code == 200
            list(response.iter_lines())
    (event,) = wait_for_events(1)
    assert event.streamed and event.incomplete and event.error_type == "stream_ended_early"


def test_failures_are_recorded_with_zero_tokens_and_the_error(live) -> None:
    live.anthropic.enqueue("POST", "/v1/messages", Reply(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}))
    with httpx.Client(base_url=live.url, timeout=20) as client:
        assert client.post("/v1/messages", json=MESSAGES, headers=live.headers()).status_code == 429
        assert client.post("/v1/messages", json=MESSAGES, headers={"x-api-key": "kl_unknown"}).status_code == 401
        assert client.post("/v1/messages", json={**MESSAGES, "model": "nope"}, headers=live.headers()).status_code == 404
    limited, unauthenticated, unknown = wait_for_events(3)
    assert (limited.status, tokens(limited)) == (429, (0, 0, 0, 0, 0)) and limited.error_type.startswith("upstream_429")
    assert (unauthenticated.status, unauthenticated.key_id, unauthenticated.error_type) == (401, None, "invalid_api_key")
    assert (unknown.status, unknown.error_type, unknown.key_id) == (404, "model_not_found", live.key_id)


def test_a_response_kleis_failed_to_process_is_recorded_as_the_500_the_client_got(live, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("bug in a response hook")

    monkeypatch.setattr(addons.responses, "aggregate_response", broken)
    with httpx.Client(base_url=live.url, timeout=20) as client:
        assert client.post("/v1/chat/completions", json=CHAT, headers=live.headers()).status_code == 500
    (event,) = wait_for_events(1)
    assert (event.status, event.error_type) == (500, "internal_error")


def test_1000_concurrent_requests_make_exactly_1000_events(live) -> None:
    async def fire() -> list[int]:
        semaphore = asyncio.Semaphore(250)
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
        async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as client:

            async def one(i: int) -> int:
                async with semaphore:
                    path, body = (("/v1/messages", MESSAGES), ("/v1/chat/completions", CHAT))[i % 2]
                    return (await client.post(path, json={**body, "stream": i % 4 < 2}, headers=live.headers())).status_code

            return await asyncio.gather(*(one(i) for i in range(1000)))

    statuses = asyncio.run(fire())
    assert statuses == [200] * 1000
    events = wait_for_events(1000, timeout=30)
    assert len(events) == 1000 and len({e.request_id for e in events}) == 1000
    assert live.recorder.dropped == 0
    # messages: 500 × 7; chat: 250 non-streamed × 9, and 250 streams that did not ask for usage (none reported)
    assert sum(e.output_tokens for e in events) == 500 * 7 + 250 * 9
    silent = [e for e in events if e.protocol == "chat" and e.streamed]
    assert len(silent) == 250 and all(e.output_tokens == 0 and not e.incomplete for e in silent)
    assert ApiKey.get_by_id(live.key_id).last_used_at is not None


def test_aggregates_by_model_and_the_cli(live, monkeypatch, capsys) -> None:
    with httpx.Client(base_url=live.url, timeout=20) as client:
        for _ in range(2):
            client.post("/v1/messages", json=MESSAGES, headers=live.headers())
        client.post("/v1/chat/completions", json=CHAT, headers=live.headers())
    wait_for_events(3)
    by_model = {r["group"]: r for r in usage_store.totals(time.time() - 3600, "model")}
    assert by_model["loop/claude-u"]["requests"] == 2 and by_model["loop/claude-u"]["cache_read_tokens"] == 200
    assert by_model["loop/gpt-u"]["input_tokens"] == 20
    (overall,) = usage_store.totals(time.time() - 3600)
    assert overall["requests"] == 3 and overall["output_tokens"] == 2 * 7 + 9
    from cli import main

    monkeypatch.setenv("KLEIS_DATA_DIR", str(live.config.data_dir))
    monkeypatch.setenv("KLEIS_SECRET_KEY", live.config.secret_key)
    capsys.readouterr()
    assert main(["usage", "--since", "1h", "--by", "key", "--json", "--recent", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["totals"][0]["requests"] == 3 and printed["totals"][0]["label"].startswith("tests (")
    assert len(printed["recent"]) == 2


def test_an_agents_probe_of_the_base_url_is_not_recorded_as_an_error(live) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        assert client.head("/").status_code == 200 and client.get("/").status_code == 200
        assert client.head("/healthz").status_code == 200
        assert client.post("/", json={}).status_code == 405
    live.recorder.stop_blocking()
    assert [(event.status, event.error_type) for event in UsageEvent.select()] == [(405, "method_not_allowed")]
