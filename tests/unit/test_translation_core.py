"""The translation core alone (providers.protocols): Messages requests read into a turn and written as Responses
requests; Responses streams read into neutral events and written as Anthropic streams, checked by the anthropic
SDK's own accumulator; the bug classes peers hit, each by name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st

from core.sse import SSEParser
from providers.protocols import messages, messages_stream, responses, responses_stream
from providers.protocols.turn import Untranslatable
from tests.fakes.codex import FakeCodex

CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "gpt-5.4",
    "max_tokens": 32000,
    "temperature": 1,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332; cch=abcde;"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be brief."},
    ],
    "thinking": {"type": "enabled", "budget_tokens": 10000},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "metadata": {"user_id": '{"session_id":"s1"}'},
    "tools": [
        {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "messages": [
        {"role": "user", "content": "Read the README"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should read it", "signature": "EqQBsig"},
                {"type": "text", "text": "Reading it."},
                {"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"path": "README.md"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "# Kleis"}]},
                {"type": "text", "text": "Summarise it", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ],
}


def test_a_claude_code_request_becomes_a_responses_request() -> None:
    body = responses.write_request(messages.read_request(CLAUDE_CODE_BODY))
    assert body["instructions"] == "You are Claude Code, Anthropic's official CLI for Claude.\n\nBe brief."  # no billing block
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Read the README"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Reading it."}]},
        {"type": "function_call", "call_id": "call_1", "name": "read_file", "arguments": '{"path":"README.md"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "# Kleis"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Summarise it"}]},
    ]
    assert "I should read it" not in json.dumps(body) and "EqQBsig" not in json.dumps(body)  # reasoning never as text
    assert body["tools"] == [
        {
            "type": "function",
            "name": "read_file",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            "strict": False,
        }
    ]
    assert (body["tool_choice"], body["parallel_tool_calls"], body["reasoning"]) == ("auto", False, {"effort": "medium"})
    assert body["stream"] is True and body["store"] is False
    for absent in ("temperature", "max_tokens", "metadata", "context_management", "system", "thinking"):
        assert absent not in body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stop_sequences": ["END"]}, "stop_sequences"),
        ({"temperature": 0.2}, "temperature"),
        ({"top_k": 5}, "top_k"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0"),
        ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "messages.0.content.0.type"),
        ({"output_config": {"format": {"type": "regex"}}}, "output_config.format"),
    ],
)
def test_what_has_no_equivalent_is_a_400_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(Untranslatable) as refused:
        messages.read_request({**CLAUDE_CODE_BODY, **change})
    assert refused.value.status == 400 and refused.value.message.startswith(f"{field}:") and refused.value.field == field


def test_tool_choice_images_errors_and_effort() -> None:
    turn = messages.read_request(
        {
            "model": "m",
            "max_tokens": 10,
            "stop_sequences": [],
            "tool_choice": {"type": "tool", "name": "read_file"},
            "output_config": {"effort": "max"},
            "tools": [{"name": "read_file", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read_file", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "no such file", "is_error": True}]},
            ],
        }
    )
    body = responses.write_request(turn)
    assert body["tool_choice"] == {"type": "function", "name": "read_file"} and body["reasoning"] == {"effort": "xhigh"}
    assert body["input"][0]["content"] == [{"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "auto"}]
    assert body["input"][2] == {"type": "function_call_output", "call_id": "t1", "output": "Error: no such file"}
    assert responses.write_request(messages.read_request({"model": "m", "messages": [], "tool_choice": {"type": "any"}}))[
        "tool_choice"
    ] == ("required")


# -- streams -------------------------------------------------------------------------------------------------------
def codex_stream(**plan: Any) -> bytes:
    fake = FakeCodex()
    for name, value in plan.items():
        setattr(fake.plan, name, value)
    return b"".join(fake.events({"model": "gpt-5.4"}))


def translate(stream: bytes, pieces: list[int] | None = None) -> bytes:
    """The Responses stream, cut into pieces at the given offsets, through the reader and the writer."""
    reader, writer = responses_stream.StreamReader(), messages_stream.StreamWriter("gpt-5.4", 900)
    parser, out = SSEParser(), []
    cuts = sorted(set(pieces or [])) + [len(stream)]
    start = 0
    for cut in cuts:
        for event in parser.feed(stream[start:cut]):
            out.append(writer.write(reader.read(event.json())))
        start = cut
    for event in parser.close():
        out.append(writer.write(reader.read(event.json())))
    return b"".join(out)


def anthropic_events(sse: bytes) -> list[tuple[str, dict]]:
    parsed = SSEParser().feed(sse)
    assert all(event.event for event in parsed)  # every event named: the anthropic SDK skips unnamed ones
    return [(event.event or "", event.json()) for event in parsed]


def final_message(sse: bytes) -> Any:
    snapshot = None
    for name, data in anthropic_events(sse):
        assert data["type"] == name
        if name != "error":
            snapshot = accumulate_event(event=data, current_snapshot=snapshot)  # type: ignore[arg-type]
    return snapshot


def test_text_and_a_tool_call_rebuild_in_the_anthropic_sdk() -> None:
    sse = translate(codex_stream(interleaved=True, empty_final_output=True))
    message = final_message(sse)
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Hi there"
    tool = message.content[1]
    assert (tool.id, tool.name, tool.input) == ("call_1", "read_file", {"path": "README.md"})
    assert message.stop_reason == "tool_use" and message.model == "gpt-5.4"
    names = [name for name, _ in anthropic_events(sse)]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [data["index"] for name, data in anthropic_events(sse) if name == "content_block_start"]
    stops = [data["index"] for name, data in anthropic_events(sse) if name == "content_block_stop"]
    assert starts == stops == [0, 1]  # one block after the other, even though the upstream interleaved them


def test_regression_arguments_are_never_emitted_twice() -> None:
    """The interleaved plan sends the arguments in a delta and again in output_item.done (NVIDIA-NeMo/Switchyard#469)."""
    sse = translate(codex_stream(interleaved=True))
    fragments = [
        d["delta"]["partial_json"] for n, d in anthropic_events(sse) if n == "content_block_delta" and "partial_json" in d["delta"]
    ]
    assert "".join(fragments) == '{"path":"README.md"}'


def test_regression_arguments_only_in_the_done_item_are_emitted_once_and_empty_ones_are_an_empty_object() -> None:
    reader = responses_stream.StreamReader()
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "ls", "arguments": ""}
    events = reader.read({"type": "response.created", "response": {"id": "resp_1", "model": "m"}})
    events += reader.read({"type": "response.output_item.added", "output_index": 0, "item": call})
    events += reader.read({"type": "response.output_item.done", "output_index": 0, "item": dict(call, arguments='{"a":1}')})
    call2 = {"type": "function_call", "id": "fc_2", "call_id": "call_10", "name": "pwd", "arguments": ""}
    events += reader.read({"type": "response.output_item.added", "output_index": 1, "item": call2})
    events += reader.read({"type": "response.output_item.done", "output_index": 1, "item": call2})
    events += reader.read({"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 2}}})
    writer = messages_stream.StreamWriter("m", 3)
    message = final_message(writer.write(events))
    assert [(b.name, b.input) for b in message.content] == [("ls", {"a": 1}), ("pwd", {})]
    collector = messages_stream.Collector("m")
    collector.add(events)
    assert [b["input"] for b in collector.message()["content"]] == [{"a": 1}, {}]


def test_regression_message_start_never_says_zero_input_and_usage_is_exact() -> None:
    sse = translate(codex_stream())
    events = anthropic_events(sse)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 900  # the estimate, not 0
    usage = final_message(sse).usage
    # upstream: input 120 of which 100 cached, output 30 (12 reasoning): cached counted once, as cache reads
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (20, 100, 30)
    assert messages_stream.StreamWriter("m", 0).write([]) == b"" and b'"input_tokens":1' in messages_stream.StreamWriter("m", 0).write(
        responses_stream.StreamReader().read({"type": "response.created", "response": {}})
    )


def test_regression_reasoning_is_never_text() -> None:
    sse = translate(codex_stream(interleaved=True))
    assert b"gAAAA" not in sse and b"reasoning" not in sse
    assert [b.type for b in final_message(sse).content] == ["text", "tool_use"]


def test_incomplete_and_failed_streams() -> None:
    message = final_message(translate(codex_stream(final_event="response.incomplete")))
    assert message.stop_reason == "max_tokens"
    failed = anthropic_events(translate(codex_stream(failed={"code": "rate_limit_exceeded", "message": "slow down"})))
    assert failed[-1] == ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    assert [n for n, _ in failed].count("content_block_start") == [n for n, _ in failed].count("content_block_stop")


SPLIT_STREAM = codex_stream(interleaved=True)  # one fixed stream: the fake's ids and times change per call
SPLIT_WHOLE = translate(SPLIT_STREAM)


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(SPLIT_STREAM) - 1), max_size=30))
def test_any_split_of_the_upstream_stream_translates_the_same(cuts: list[int]) -> None:
    assert translate(SPLIT_STREAM, cuts) == SPLIT_WHOLE


def test_a_mid_conversation_system_message_is_a_developer_message() -> None:
    """Claude Code 2.1.332 sends `role: "system"` reminders between turns; the Codex backend refuses role system."""
    turn = messages.read_request({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "be brief"}]})
    assert responses.write_request(turn)["input"][1] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "be brief"}],
    }


def test_the_messages_writer_puts_each_turns_parts_in_anthropics_order_whatever_order_they_came_in() -> None:
    """Results, then thinking (this upstream's own), then text and images, then calls — each kind in its own order
    (a Chat client's text before its tool messages makes a user turn in the other order)."""
    from providers.protocols import carry
    from providers.protocols.turn import Image, Message, Reasoning, Text, ToolCall, ToolResult, Turn

    png = "data:image/png;base64,iVBORw0KGgo="
    thinking = carry.pack_thinking({"type": "thinking", "thinking": "hm", "signature": "sig"})
    turn = Turn(
        model="m",
        system="",
        messages=(
            Message("assistant", (ToolCall("c1", "read", "{}"), ToolCall("c2", "ls", "{}"))),
            Message("user", (Text("first"), ToolResult("c1", (Text("one"),)), Image(png), ToolResult("c2", (Text("two"),)))),
            Message("assistant", (ToolCall("c3", "read", '{"p":1}'), Text("then"), Reasoning("hm", carry.tag("claude", 1, thinking)))),
        ),
    )
    written = messages.write_request(turn, carry.own_blobs("claude", 1))["messages"]
    kinds = [[(b["type"], b.get("tool_use_id") or b.get("id") or b.get("text") or "") for b in m["content"]] for m in written]
    assert kinds == [
        [("tool_use", "c1"), ("tool_use", "c2")],
        [("tool_result", "c1"), ("tool_result", "c2"), ("text", "first"), ("image", "")],
        [("thinking", ""), ("text", "then"), ("tool_use", "c3")],
    ]
