"""Non-streaming answers built from Codex streams: empty final output, interleaved items, errors inside a 200."""

from __future__ import annotations

import json

import pytest

from core.sse import SSEParser
from providers.codex.aggregate import aggregate_events
from providers.codex.stream import CodexState
from providers.usage import ResponsesUsageReader
from tests.fakes.codex import FakeCodex

BODY = {"model": "gpt-5.4", "instructions": "", "input": []}


def parsed(raw: list[bytes]) -> list:
    parser = SSEParser()
    return parser.feed(b"".join(raw)) + parser.close()


def stream(**plan: object) -> list:
    fake = FakeCodex()
    for name, value in plan.items():
        setattr(fake.plan, name, value)
    return parsed(fake.events(BODY))


def texts(output: list[dict]) -> list[str]:
    return [part["text"] for item in output if item["type"] == "message" for part in item["content"]]


def test_the_final_response_is_the_answer() -> None:
    status, body = aggregate_events(stream())
    assert status == 200 and body["object"] == "response" and body["status"] == "completed"
    assert texts(body["output"]) == ["Hi there"] and body["usage"]["input_tokens"] == 120


def test_an_empty_final_output_is_rebuilt_from_the_done_items() -> None:
    status, body = aggregate_events(stream(empty_final_output=True))
    assert status == 200 and texts(body["output"]) == ["Hi there"]


def test_interleaved_items_come_back_in_output_index_order() -> None:
    events = stream(interleaved=True, empty_final_output=True)
    done_order = [e.json()["item"]["type"] for e in events if e.event == "response.output_item.done"]
    assert done_order == ["function_call", "reasoning", "message"]  # the fake finishes them out of order
    status, body = aggregate_events(events)
    assert status == 200 and [item["type"] for item in body["output"]] == ["reasoning", "message", "function_call"]
    assert body["output"][2]["arguments"] == '{"path":"README.md"}' and texts(body["output"]) == ["Hi there"]


def test_a_full_final_output_is_kept_as_sent() -> None:
    events = stream(interleaved=True)
    final = next(e.json()["response"] for e in events if e.event == "response.completed")
    assert aggregate_events(events)[1]["output"] == final["output"]


@pytest.mark.parametrize(("final_event", "status_field"), [("response.done", "completed"), ("response.incomplete", "incomplete")])
def test_done_and_incomplete_count_as_the_end(final_event: str, status_field: str) -> None:
    status, body = aggregate_events(stream(final_event=final_event, empty_final_output=True))
    assert status == 200 and body["status"] == status_field and texts(body["output"]) == ["Hi there"]


def test_events_without_event_lines_are_read_by_their_type() -> None:
    raw = [line for line in FakeCodex().events(BODY)]
    bare = [b"\n".join(part for part in chunk.split(b"\n") if not part.startswith(b"event:")) for chunk in raw]
    status, body = aggregate_events(parsed(bare))
    assert status == 200 and texts(body["output"]) == ["Hi there"]


@pytest.mark.parametrize(
    ("error", "style", "status"),
    [
        ({"type": "service_unavailable_error", "code": "server_is_overloaded", "message": "Our servers are busy"}, "bare", 503),
        (
            {"type": "usage_limit_reached", "message": "The usage limit has been reached", "plan_type": "plus", "resets_at": 1900000000},
            "bare",
            429,
        ),
        ({"code": "context_length_exceeded", "message": "Your input exceeds the context window"}, "event", 400),
        ({"code": "mystery", "message": "something broke"}, "event", 502),
    ],
)
def test_an_error_inside_the_stream_becomes_an_openai_error(error: dict, style: str, status: int) -> None:
    state = CodexState(session_id="s", client_stream=False)
    got_status, body = aggregate_events(stream(error=error, error_style=style), state)
    assert got_status == status
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert error["message"] in body["error"]["message"]
    assert body["error"]["code"] == (error.get("code") or error.get("type"))
    if "resets_at" in error:
        assert body["error"]["resets_at"] == error["resets_at"] and body["error"]["plan_type"] == "plus"
    assert state.error_label == f"upstream_stream_error:{error.get('code') or error.get('type')}"


def test_a_failed_response_becomes_its_error() -> None:
    failed = {"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 11.054s."}
    status, body = aggregate_events(stream(failed=failed))
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"


def test_a_stream_that_stops_early_is_a_502() -> None:
    events = stream()[:4]  # created, item added, two deltas: no end
    state = CodexState(session_id="s", client_stream=False)
    status, body = aggregate_events(events, state)
    assert status == 502 and body["error"]["code"] == "stream_incomplete" and state.error_label == "upstream_stream_error:stream_incomplete"
    json.dumps(body)  # serialisable as the answer


@pytest.mark.parametrize("final_event", ["response.completed", "response.done", "response.incomplete"])
def test_usage_is_read_from_every_final_event(final_event: str) -> None:
    reader = ResponsesUsageReader()
    for event in stream(final_event=final_event):
        reader.event(event)
    usage = reader.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens, usage.reasoning_tokens) == (20, 100, 30, 12)
