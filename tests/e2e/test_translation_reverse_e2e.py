"""Codex CLI's protocol on Claude models, through a real Kleis listener to the fake Claude API: the official openai
SDK's Responses stream helper rebuilds a turn with a function call, sends the output back, and gets one Response
when it does not stream; the Claude rules (identity, tool names out and back) apply to translated traffic too."""

from __future__ import annotations

import json

import openai
import pytest

from addons.services import Parts
from tests.support.claude import ClaudeLive
from tests.support.translation import CHAT_TOOLS

TOOLS = [
    {
        "type": "function",
        "name": "read_file",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        "strict": False,
    }
]
FIRST = [{"role": "user", "content": [{"type": "input_text", "text": "Read the README"}]}]


@pytest.fixture
def claude(live_kleis) -> ClaudeLive:
    return live_kleis(Parts(health=True), provider="claude", signals=True)


def client(claude: ClaudeLive) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{claude.proxy.url}/v1", api_key=claude.key, max_retries=0, timeout=20)


def test_the_openai_sdk_streams_a_function_call_from_a_claude_model(claude: ClaudeLive) -> None:
    with client(claude).responses.stream(model="claude-sonnet-4-5", input=FIRST, tools=TOOLS, instructions="Be brief.") as stream:
        response = stream.get_final_response()
    message, call = response.output
    assert message.type == "message" and message.content[0].text == "Hello from fake Claude"
    assert (call.type, call.call_id, call.name, json.loads(call.arguments)) == (
        "function_call",
        "toolu_fake_1",
        "read_file",
        {"path": "README.md"},
    )
    usage = response.usage  # the fake: 12 uncached, 100 read from the cache, 20 written to it, 7 out
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens) == (132, 100, 7)
    sent = claude.api.last("/v1/messages").json
    texts = [block["text"] for block in sent["system"]]
    assert texts[0].startswith("You are Claude Code") and "Be brief." in texts[-1]  # Kleis's identity first, as for any client
    assert sent["stream"] is True and sent["max_tokens"] > 0 and len(sent["tools"]) == 1  # (named by Kleis's Claude rules)

    second = [
        *FIRST,
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "# Kleis"},
    ]
    with client(claude).responses.stream(model="claude-sonnet-4-5", input=second, tools=TOOLS) as stream:
        stream.get_final_response()
    messages = claude.api.last("/v1/messages").json["messages"]
    assert messages[-1]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_fake_1", "content": "# Kleis"}
    assert messages[-2]["content"][-1]["type"] == "tool_use" and messages[-2]["content"][-1]["id"] == "toolu_fake_1"


def test_a_non_streamed_response_is_one_object(claude: ClaudeLive) -> None:
    response = client(claude).responses.create(model="claude-sonnet-4-5", input="hi")
    assert response.status == "completed" and response.output_text == "Hello from fake Claude"
    assert response.usage is not None and response.usage.input_tokens == 132 and response.model == "claude-sonnet-4-5"


def test_an_orphan_function_call_output_is_a_400_in_openais_shape(claude: ClaudeLive) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(claude).responses.create(
            model="claude-sonnet-4-5", input=[{"type": "function_call_output", "call_id": "call_9", "output": "x"}]
        )
    assert "input.0.call_id" in refused.value.message and claude.api.received("/v1/messages") == []


def test_claude_errors_reach_the_client_in_openais_shape(claude: ClaudeLive) -> None:
    from tests.fakes.anthropic import anthropic_error

    claude.api.enqueue(
        "POST", "/v1/messages", anthropic_error(400, "invalid_request_error", "messages: text content blocks must be non-empty")
    )
    with pytest.raises(openai.BadRequestError) as refused:
        client(claude).responses.create(model="claude-sonnet-4-5", input="hi")
    assert "text content blocks must be non-empty" in refused.value.message


def test_a_claude_stream_cut_midway_ends_with_response_failed(claude: ClaudeLive) -> None:
    from tests.fakes.base import Stream, sse

    start_event = {"type": "message_start", "message": {"id": "msg_cut", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 5}}}
    events = [
        sse("message_start", start_event),
        sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hal"}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "f"}}),
    ]
    claude.api.enqueue("POST", "/v1/messages", Stream(events, cut_after=3))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as cut:
        with client(claude).responses.stream(model="claude-sonnet-4-5", input="hi") as stream:
            for event in stream:
                seen.append(event.type)
    assert seen[0] == "response.created" and "response.completed" not in seen and "ended before" in str(cut.value)


def test_the_openai_chat_sdk_streams_a_tool_call_from_a_claude_model(claude: ClaudeLive) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Read the README"}]
    with client(claude).chat.completions.stream(
        model="claude-sonnet-4-5", messages=messages, tools=CHAT_TOOLS, stream_options={"include_usage": True}
    ) as stream:
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Hello from fake Claude"
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("toolu_fake_1", "read_file", {"path": "README.md"})
    usage = completion.usage
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens) == (132, 100, 7)
    plain = client(claude).chat.completions.create(
        model="claude-sonnet-4-5", messages=[*messages, {"role": "system", "content": "Reply in English."}]
    )
    assert plain.choices[0].message.content == "Hello from fake Claude" and plain.usage is not None and plain.usage.prompt_tokens == 132
    sent = claude.api.last("/v1/messages").json
    assert sent["messages"][-1]["role"] == "user"  # a trailing system message (chat agents send one) stays in the conversation
