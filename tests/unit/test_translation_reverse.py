"""The reverse direction's core alone: Responses requests (Codex CLI, the openai SDK) read into a turn and written as
Messages requests; Claude's streams read into neutral events and written as Responses streams, checked by the openai
SDK's own stream accumulator; the bug classes by name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._models import construct_type_unchecked
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from core.sse import SSEParser, format_event
from providers.protocols import messages, messages_stream, responses, responses_stream
from providers.protocols.turn import Untranslatable

CODEX_CLI_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "instructions": "You are Codex.",
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "thread-1",
    "reasoning": {"effort": "high", "summary": "auto"},
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "tools": [
        {
            "type": "function",
            "name": "exec_command",
            "description": "Run a command",
            "strict": False,
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Apply a patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
        },
        {"type": "web_search"},
        {"type": "namespace", "name": "mcp", "description": "an MCP server's tools", "tools": [{"type": "function", "name": "x"}]},
    ],
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<environment_context>cwd=/w</environment_context>"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-from-openai"},
        {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "README.md"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ],
}


def test_a_codex_cli_request_becomes_a_messages_request() -> None:
    body = messages.write_request(responses.read_request(CODEX_CLI_BODY))
    assert body["system"] == "You are Codex.\n\n<environment_context>cwd=/w</environment_context>"
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "list the files"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "exec_command", "input": {"cmd": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "README.md"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_2", "name": "apply_patch", "input": {"input": "*** Begin Patch"}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_2", "content": "Done"}, {"type": "text", "text": "thanks"}],
        },
    ]
    assert "gAAAA" not in json.dumps(body)  # another provider's reasoning is dropped
    assert [tool["name"] for tool in body["tools"]] == ["exec_command", "apply_patch"]  # web_search and namespace dropped
    assert body["tools"][1]["input_schema"]["properties"] == {"input": {"type": "string"}}
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    # effort high, but the last assistant turn calls a tool and its thinking (OpenAI's reasoning) cannot go to Claude:
    # Anthropic refuses that turn with thinking on, so it goes with thinking off
    assert body["max_tokens"] == messages.DEFAULT_MAX_TOKENS and "thinking" not in body
    opening = dict(CODEX_CLI_BODY, input=CODEX_CLI_BODY["input"][:2])
    assert messages.write_request(responses.read_request(opening))["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    for absent in ("store", "include", "prompt_cache_key", "reasoning", "instructions", "input", "temperature"):
        assert absent not in body


def test_regression_an_orphan_function_call_output_is_a_clear_400() -> None:
    orphan = {"model": "m", "input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]}
    with pytest.raises(Untranslatable) as refused:
        responses.read_request(orphan)
    assert refused.value.status == 400 and refused.value.field == "input.0.call_id" and "call_9" in refused.value.message
    with pytest.raises(Untranslatable, match="previous_response_id"):
        responses.read_request({"model": "m", "input": "hi", "previous_response_id": "resp_1"})


def test_limits_effort_and_images() -> None:
    body = messages.write_request(
        responses.read_request(
            {
                "model": "m",
                "max_output_tokens": 2000,
                "temperature": 0.3,
                "reasoning": {"effort": "minimal"},
                "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,iVBO"}]}],
            }
        )
    )
    assert body["max_tokens"] == 2000 and "thinking" not in body and body["temperature"] == 0.3
    assert body["messages"][0]["content"] == [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]
    capped = messages.write_request(
        responses.read_request({"model": "m", "max_output_tokens": 4000, "reasoning": {"effort": "xhigh"}, "input": "hi"})
    )
    assert capped["thinking"]["budget_tokens"] == 3999  # below max_tokens, as Anthropic requires


# -- streams ----------------------------------------------------------------------------------------------------------
def claude_stream(stop_reason: str = "tool_use", tool: str = "exec_command", arguments: str = '{"cmd":"ls"}') -> bytes:
    events = [
        (
            "message_start",
            {
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [],
                    "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 1},
                }
            },
        ),
        ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "secret plan"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "EqQBsig"}}),
        ("content_block_stop", {"index": 0}),
        ("ping", {}),
        ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": " there"}}),
        ("content_block_stop", {"index": 1}),
        ("content_block_start", {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": tool, "input": {}}}),
        ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": arguments[:5]}}),
        ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": arguments[5:]}}),
        ("content_block_stop", {"index": 2}),
        ("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": 30}}),
        ("message_stop", {}),
    ]
    return b"".join(format_event({"type": name, **data}, name) for name, data in events)


def translate(
    stream: bytes, cuts: list[int] | None = None, custom: frozenset[str] = frozenset()
) -> tuple[bytes, responses_stream.StreamWriter]:
    reader, writer, parser = messages_stream.StreamReader(), responses_stream.StreamWriter("claude-sonnet-4-5", custom), SSEParser()
    out, start = [], 0
    for cut in [*sorted(set(cuts or [])), len(stream)]:
        for event in parser.feed(stream[start:cut]):
            out.append(writer.write(reader.read(event.json())))
        start = cut
    return b"".join(out), writer


def final_response(sse: bytes) -> Any:
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in SSEParser().feed(sse):
        data = event.json()
        assert event.event == data["type"]
        state.handle_event(construct_type_unchecked(type_=ResponseStreamEvent, value=data))  # type: ignore[arg-type]
    return state._completed_response


def test_a_claude_stream_rebuilds_in_the_openai_sdk_with_exact_usage() -> None:
    sse, _ = translate(claude_stream())
    response = final_response(sse)
    assert response is not None and response.status == "completed"
    message, call = response.output
    assert message.type == "message" and message.content[0].text == "Hi there"
    assert (call.type, call.call_id, call.name, call.arguments) == ("function_call", "toolu_1", "exec_command", '{"cmd":"ls"}')
    usage = response.usage  # Claude: input 10 uncached, 100 read from the cache, 20 written to it, output 30
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens, usage.total_tokens) == (130, 100, 30, 160)
    assert b"secret plan" not in sse and b"EqQBsig" not in sse  # thinking is never text
    fragments = [e.json()["delta"] for e in SSEParser().feed(sse) if e.event == "response.function_call_arguments.delta"]
    assert "".join(fragments) == '{"cmd":"ls"}'  # the arguments once


def test_a_custom_tool_call_comes_back_as_a_custom_tool_call() -> None:
    sse, writer = translate(claude_stream(tool="apply_patch", arguments='{"input":"*** Begin Patch"}'), custom=frozenset({"apply_patch"}))
    assert writer.final is not None
    item = writer.final["output"][1]
    assert (item["type"], item["call_id"], item["name"], item["input"]) == ("custom_tool_call", "toolu_1", "apply_patch", "*** Begin Patch")
    assert final_response(sse) is not None


def test_max_tokens_is_incomplete_and_errors_fail_the_response() -> None:
    _, writer = translate(claude_stream(stop_reason="max_tokens"))
    assert writer.final is not None and writer.final["status"] == "incomplete"
    assert writer.final["incomplete_details"] == {"reason": "max_output_tokens"}
    failing = format_event({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 3}}}, "message_start") + format_event(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"
    )
    sse, writer = translate(failing)
    names = [e.event for e in SSEParser().feed(sse)]
    assert (
        names[-2:] == ["error", "response.failed"] and writer.final is not None and writer.final["error"]["code"] == "server_is_overloaded"
    )


SPLIT = claude_stream()
WHOLE_OUTPUT = final_response(translate(SPLIT)[0]).output


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(SPLIT) - 1), max_size=30))
def test_any_split_of_a_claude_stream_translates_the_same(cuts: list[int]) -> None:
    assert final_response(translate(SPLIT, cuts)[0]).output == WHOLE_OUTPUT
