"""Codex streams for streaming clients (pass-through, response.done, errors in a 200) and what errors mean."""

from __future__ import annotations

import time

import pytest

from core.sse import SSEParser
from engine.streaming import StreamRewriter
from providers.codex.errors import classify
from providers.codex.stream import CodexState, make_transformer
from tests.fakes.codex import FakeCodex

BODY = {"model": "gpt-5.4", "instructions": "", "input": []}


def run(raw: list[bytes], state: CodexState | None = None, split: int = 0) -> tuple[bytes, CodexState]:
    """The events through the same StreamRewriter mitmproxy calls, optionally cut into small chunks."""
    state = state or CodexState(session_id="s", client_stream=True)
    rewriter = StreamRewriter(make_transformer(state))
    data = b"".join(raw)
    chunks = [data[i : i + split] for i in range(0, len(data), split)] if split else [data]
    out = b"".join(piece for chunk in chunks for piece in rewriter(chunk)) + b"".join(rewriter(b""))
    return out, state


def events_of(data: bytes) -> list:
    parser = SSEParser()
    return parser.feed(data) + parser.close()


def fake(**plan: object) -> list[bytes]:
    codex = FakeCodex()
    for name, value in plan.items():
        setattr(codex.plan, name, value)
    return codex.events(BODY)


@pytest.mark.parametrize("split", [0, 7])
def test_ordinary_events_pass_byte_for_byte(split: int) -> None:
    raw = fake(interleaved=True)
    out, state = run(raw, split=split)
    assert out == b"".join(raw) and state.error is None and state.error_label == ""
    assert state.response_id.startswith("resp_codex") and state.events == len(raw)


def test_the_hot_path_does_not_parse_deltas() -> None:
    state = CodexState(session_id="s", client_stream=True)
    transform = make_transformer(state)
    deltas = [e for e in events_of(b"".join(fake())) if e.event == "response.output_text.delta"]
    assert deltas and all(transform(e) is None for e in deltas)
    assert not any(e._parsed for e in deltas)


def test_response_done_reaches_clients_as_response_completed() -> None:
    out, _ = run(fake(final_event="response.done"))
    last = events_of(out)[-1]
    assert last.event == "response.completed" and last.json()["type"] == "response.completed"
    assert last.json()["response"]["usage"]["output_tokens"] == 30


def test_a_bare_error_object_becomes_an_error_event_and_a_failed_response() -> None:
    error = {"type": "service_unavailable_error", "code": "server_is_overloaded", "message": "Our servers are busy"}
    out, state = run(fake(error=error))
    tail = events_of(out)[-2:]
    assert [e.event for e in tail] == ["error", "response.failed"]
    first = tail[0].json()
    assert first["type"] == "error" and first["code"] == "server_is_overloaded" and first["message"] == "Our servers are busy"
    assert first["error"]["message"] == "Our servers are busy"  # the OpenAI SDKs raise APIError on an "error" object
    assert isinstance(first["sequence_number"], int)
    failed = tail[1].json()["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "server_is_overloaded", "message": "Our servers are busy"}
    assert failed["id"] == state.response_id
    assert state.error_label == "upstream_stream_error:server_is_overloaded" and state.signal.kind == "overloaded"


def test_a_usage_limit_inside_the_stream_is_a_rate_limit_signal() -> None:
    _, state = run(fake(error={"type": "usage_limit_reached", "message": "limit", "resets_at": 1_900_000_000}))
    assert state.signal.kind == "rate_limit" and state.signal.reset_at == 1_900_000_000


def test_a_null_error_field_is_not_an_error() -> None:
    raw = [b'data: {"type":"codex.rate_limits","error":null}\n\n', b'data: {"error":null,"note":"x"}\n\n']
    out, state = run(raw)
    assert out == b"".join(raw) and state.error is None and state.signal is None


def test_a_responses_error_event_gains_the_error_object() -> None:
    out, state = run(fake(error={"code": "context_length_exceeded", "message": "too long"}, error_style="event"))
    error = next(e for e in events_of(out) if e.event == "error").json()
    assert error["error"]["code"] == "context_length_exceeded" and state.error_label.endswith("context_length_exceeded")


def test_a_failed_response_passes_unchanged_and_is_labelled() -> None:
    raw = fake(failed={"code": "rate_limit_exceeded", "message": "try again in 3s"})
    out, state = run(raw)
    assert out == b"".join(raw) and state.error_label == "upstream_stream_error:rate_limit_exceeded"


def test_comments_and_done_markers_pass() -> None:
    raw = [b": keep-alive\n\n", b"data: [DONE]\n\n"]
    assert run(raw)[0] == b"".join(raw)


# -- classify --------------------------------------------------------------------------------------


def test_usage_limit_reached_carries_its_reset_time() -> None:
    body = FakeCodex.usage_limit(1_900_000_000).body
    signal = classify(429, {}, body)
    assert signal.kind == "rate_limit" and signal.reset_at == 1_900_000_000 and signal.account_wide
    assert "usage_limit_reached" in signal.label and "plus" in signal.label


@pytest.mark.parametrize(
    ("error", "expected_in"),
    [
        ({"code": "rate_limit_exceeded", "message": "slow", "resets_in_seconds": 90}, 90),
        ({"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 11.054s."}, 11.054),
        ({"code": "rate_limit_exceeded", "message": "Please try again in 250ms."}, 0.25),
        ({"type": "usage_limit_reached", "resets_at": "in 60s, as milliseconds"}, 60),  # milliseconds tolerated
    ],
)
def test_other_reset_hints(error: dict, expected_in: float) -> None:
    if error.get("resets_at") == "in 60s, as milliseconds":
        error = dict(error, resets_at=(time.time() + 60) * 1000)
    signal = classify(429, {}, {"error": error})
    assert signal.kind == "rate_limit" and signal.reset_at is not None
    assert abs(signal.reset_at - time.time() - expected_in) < 2


def test_a_plain_429_falls_back_to_retry_after() -> None:
    signal = classify(429, {"retry-after": "30"}, {"detail": "Too Many Requests"})
    assert signal.kind == "rate_limit" and abs(signal.reset_at - time.time() - 30) < 2


@pytest.mark.parametrize(
    ("status", "body", "kind", "account_wide"),
    [
        (401, {"detail": "Could not parse your authentication token."}, "auth", True),
        (400, {"detail": "Instructions are required"}, "request", False),
        (500, {"detail": "Internal Server Error"}, "server", True),
        (200, {"error": {"type": "usage_limit_reached", "resets_at": 1_900_000_000}}, "rate_limit", True),
        (200, {"error": {"type": "service_unavailable_error", "code": "server_is_overloaded"}}, "overloaded", True),
        (200, None, "ok", True),
    ],
)
def test_other_statuses(status: int, body: object, kind: str, account_wide: bool) -> None:
    signal = classify(status, {}, body)
    assert (signal.kind, signal.account_wide) == (kind, account_wide)
