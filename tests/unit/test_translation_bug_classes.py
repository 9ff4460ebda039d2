"""One regression test per bug class of the peers' translation reports (`../shared/research/translation.md`: about 35
threads in 2026), each run through all six directions Kleis translates: every upstream protocol's stream, from the
fake that speaks it, read into neutral events and written in each other client protocol, then rebuilt by that
protocol's official SDK stream accumulator — a strict, independent check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai._models import construct_type_unchecked
from openai._types import omit
from openai.lib.streaming.chat._completions import ChatCompletionStreamState
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from core.jsonshape import mapping
from core.protocol import Protocol
from core.sse import SSEParser
from providers.protocols import carry, chat, chat_stream, messages, messages_stream, responses, responses_stream
from providers.protocols import events as ev
from providers.protocols.turn import Untranslatable
from providers.translated import STREAM_READER
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Recorded, Stream
from tests.fakes.codex import FakeCodex
from tests.fakes.openai import FakeOpenAI

M, R, C = Protocol.MESSAGES, Protocol.RESPONSES, Protocol.CHAT
DIRECTIONS = [(client, upstream) for client in (M, R, C) for upstream in (M, R, C) if client != upstream]
IDS = [f"{client.value}-client-on-{upstream.value}" for client, upstream in DIRECTIONS]
THOUGHT = "secret chain of thought"
TOOL = {"type": "function", "function": {"name": "read_file", "description": "Read", "parameters": {"type": "object"}}}
# Each fake's usage, as (uncached input, cache reads, cache writes, output): what every client must be told, once each.
UPSTREAM_USAGE = {M: (12, 100, 20, 7), R: (20, 100, 0, 30), C: (20, 30, 0, 9)}


def fake_reply(fake: Any, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    reply = fake.routes[("POST", path)](Recorded("POST", path, {}, json.dumps(body).encode(), 0.0))
    assert isinstance(reply, Stream)
    return [event.json() if event.data != "[DONE]" else "[DONE]" for event in SSEParser().feed(b"".join(reply.events))]


def upstream_stream(upstream: Protocol) -> list[Any]:
    """A streamed answer with reasoning, text and a tool call (its arguments in pieces), and cache usage."""
    if upstream is M:
        fake = FakeAnthropic()
        fake.thinking = (THOUGHT,)
        body = {
            "model": "claude",
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [],
            "tools": [{"name": "read_file"}],
        }
        return fake_reply(fake, "/v1/messages", body)
    if upstream is R:
        codex = FakeCodex()
        codex.plan.interleaved = True  # reasoning, text and a call; arguments in a delta and again when done
        return [event.json() for event in SSEParser().feed(b"".join(codex.events({"model": "gpt-5.4"})))]
    fake_chat = FakeOpenAI()
    fake_chat.chat_calls = True
    body = {
        "model": "gpt-4.1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [TOOL],
        "messages": [{"role": "user", "content": "hi"}],
    }
    events = fake_chat_events = fake_reply(fake_chat, "/v1/chat/completions", body)
    reasoning = dict(fake_chat_events[0], choices=[{"index": 0, "delta": {"reasoning_content": THOUGHT}, "finish_reason": None}])
    return [events[0], reasoning, *events[1:]]  # Copilot's and DeepSeek's reasoning field, before the answer


def translate(client: Protocol, events: list[Any], upstream: Protocol) -> bytes:
    reader = STREAM_READER[upstream]()
    writer: Any = (
        messages_stream.StreamWriter("model", 900)
        if client is M
        else chat_stream.StreamWriter("model", include_usage=True)
        if client is C
        else responses_stream.StreamWriter("model")
    )
    return b"".join(writer.write(reader.read(data)) for data in events)


def rebuilt(client: Protocol, sse: bytes) -> Any:
    """The client SDK's own accumulation of the stream."""
    parsed = SSEParser().feed(sse)
    if client is M:
        snapshot = None
        for event in parsed:
            snapshot = accumulate_event(event=event.json(), current_snapshot=snapshot)  # type: ignore[arg-type]
        return snapshot
    if client is C:
        state = ChatCompletionStreamState(input_tools=omit, response_format=omit)
        for event in parsed[:-1]:
            state.handle_chunk(construct_type_unchecked(type_=ChatCompletionChunk, value=event.json()))  # type: ignore[arg-type]
        return state.get_final_completion()
    responses_state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in parsed:
        responses_state.handle_event(construct_type_unchecked(type_=ResponseStreamEvent, value=event.json()))  # type: ignore[arg-type]
    return responses_state._completed_response


def answer(client: Protocol, upstream: Protocol) -> tuple[bytes, Any]:
    sse = translate(client, upstream_stream(upstream), upstream)
    return sse, rebuilt(client, sse)


def calls_of(client: Protocol, final: Any) -> list[tuple[str, Any]]:
    """(name, parsed arguments) of each tool call the client rebuilt."""
    if client is M:
        return [(block.name, block.input) for block in final.content if block.type == "tool_use"]
    if client is C:
        return [(call.function.name, json.loads(call.function.arguments)) for call in final.choices[0].message.tool_calls or []]
    return [(item.name, json.loads(item.arguments)) for item in final.output if item.type == "function_call"]


def text_of(client: Protocol, final: Any) -> str:
    if client is M:
        return "".join(block.text for block in final.content if block.type == "text")
    if client is C:
        return final.choices[0].message.content or ""
    return "".join(part.text for item in final.output if item.type == "message" for part in item.content)


def usage_of(client: Protocol, final: Any) -> tuple[int, int, int]:
    """(total input, cache reads, output) as the client reads them."""
    if client is M:
        u = final.usage
        return (
            u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0),
            u.cache_read_input_tokens,
            u.output_tokens,
        )
    if client is C:
        u = final.usage
        return u.prompt_tokens, u.prompt_tokens_details.cached_tokens, u.completion_tokens
    u = final.usage
    return u.input_tokens, u.input_tokens_details.cached_tokens, u.output_tokens


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS, ids=IDS)
def test_bug_class_tool_arguments_arrive_once_whole(client: Protocol, upstream: Protocol) -> None:
    """Arguments dropped, emitted twice or `{}` (CLIProxyAPI #5735, #4447; Switchyard PR #469): the client's own SDK
    rebuilds one call with exactly the upstream's arguments."""
    _, final = answer(client, upstream)
    expected = {M: {"path": "README.md"}, R: {"path": "README.md"}, C: {"path": "src/app.py", "line": 3}}[upstream]
    assert [arguments for _, arguments in calls_of(client, final)] == [expected]


@pytest.mark.parametrize("client", [M, R, C], ids=lambda p: f"{p.value}-client")
def test_bug_class_a_call_without_arguments_is_an_empty_object(client: Protocol) -> None:
    """`{}` where the upstream sent no arguments at all (a no-argument tool): an empty object, never a missing or
    broken one."""
    events = [
        ev.Start("resp_1", "m"),
        ev.BlockStart(0, "tool", "call_1", "pwd"),
        ev.BlockStop(0),
        ev.Stop("tool_use", ev.Usage(input=5, output=2)),
    ]
    writer: Any = {M: messages_stream.StreamWriter("m", 5), C: chat_stream.StreamWriter("m"), R: responses_stream.StreamWriter("m")}[client]
    assert calls_of(client, rebuilt(client, writer.write(events))) == [("pwd", {})]


ORPHANS = {
    M: {
        "model": "m",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}],
    },
    R: {"model": "m", "input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]},
    C: {"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]},
}


@pytest.mark.parametrize("client", [M, R, C], ids=lambda p: f"{p.value}-client")
def test_bug_class_an_orphan_tool_output_is_a_400_naming_it(client: Protocol) -> None:
    """An output with no call before it, which every upstream refuses in its own words ("No tool call found for
    function call output"): Kleis answers 400 naming the field, before anything goes upstream."""
    reader = {M: messages.read_request, R: responses.read_request, C: chat.read_request}[client]
    with pytest.raises(Untranslatable) as refused:
        reader(ORPHANS[client])
    assert refused.value.field.endswith(("tool_use_id", "call_id", "tool_call_id")) and "9" in refused.value.message


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS, ids=IDS)
def test_bug_class_the_stop_says_tool_use_after_a_tool_call(client: Protocol, upstream: Protocol) -> None:
    """`finish_reason` not `tool_calls` after a tool call (BerriAI/litellm #20711): the client is told the turn ended
    for a tool."""
    _, final = answer(client, upstream)
    if client is M:
        assert final.stop_reason == "tool_use"
    elif client is C:
        assert final.choices[0].finish_reason == "tool_calls"
    else:
        assert final.status == "completed" and final.output[-1].type == "function_call"


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS, ids=IDS)
def test_bug_class_reasoning_never_inside_the_answer_text(client: Protocol, upstream: Protocol) -> None:
    """Thinking leaked into text blocks (litellm #32357, #30765): the upstream's reasoning is not the answer."""
    sse, final = answer(client, upstream)
    text = text_of(client, final)
    assert text and THOUGHT not in text and THOUGHT.encode() not in sse  # not asked for: not sent at all


@pytest.mark.parametrize("writer", ["messages", "responses", "chat"])
def test_bug_class_a_foreign_signature_is_never_forwarded(writer: str) -> None:
    """A thinking signature from one provider sent to another (400; claude-code-router #1686): another provider's
    reasoning — an Anthropic signature, an OpenAI blob — goes to no writer."""
    anthropic_history = {
        "model": "m",
        "max_tokens": 9,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": THOUGHT, "signature": "ErUBCkYIBxgCIkB"}, {"type": "text", "text": "ok"}],
            },
            {"role": "user", "content": "go on"},
        ],
    }
    openai_history = {
        "model": "m",
        "input": [
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": THOUGHT}], "encrypted_content": "gAAAAB-openai"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"role": "user", "content": "go on"},
        ],
    }
    write = {"messages": messages.write_request, "responses": responses.write_request, "chat": chat.write_request}[writer]
    for turn in (messages.read_request(anthropic_history), responses.read_request(openai_history)):
        body = json.dumps(write(turn))
        assert THOUGHT not in body and "ErUBCkYIBxgCIkB" not in body and "gAAAAB-openai" not in body


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS, ids=IDS)
def test_bug_class_the_answer_starts_once(client: Protocol, upstream: Protocol) -> None:
    """Duplicate `message_start` (litellm #33224): one start of the answer, whatever the upstream sends."""
    sse, _ = answer(client, upstream)
    parsed = [event.json() for event in SSEParser().feed(sse) if event.data != "[DONE]"]
    if client is M:
        assert [e["type"] for e in parsed].count("message_start") == 1
    elif client is R:
        assert [e["type"] for e in parsed].count("response.created") == 1
    else:
        assert sum(1 for e in parsed for choice in e["choices"] if "role" in choice["delta"]) == 1  # strings concatenate


@pytest.mark.parametrize("upstream", [R, C], ids=lambda p: f"on-{p.value}")
def test_bug_class_message_start_never_says_zero_input(upstream: Protocol) -> None:
    """`message_start` with `input_tokens: 0` (CLIProxyAPI #5617): OpenAI's protocols report usage only at the end, so
    Anthropic's start carries an estimate, never 0."""
    sse, _ = answer(M, upstream)
    start = next(event.json() for event in SSEParser().feed(sse) if event.event == "message_start")
    assert start["message"]["usage"]["input_tokens"] > 0


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS, ids=IDS)
def test_bug_class_cache_tokens_survive_the_stream(client: Protocol, upstream: Protocol) -> None:
    """Cache read tokens lost when the answer is streamed (CLIProxyAPI #5854, #1700): the client's final usage has the
    upstream's cache reads."""
    _, final = answer(client, upstream)
    assert usage_of(client, final)[1] == UPSTREAM_USAGE[upstream][1]


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS, ids=IDS)
def test_bug_class_cached_tokens_counted_once(client: Protocol, upstream: Protocol) -> None:
    """Cached tokens subtracted twice, or added twice (litellm #24176): OpenAI's input includes the cached tokens,
    Anthropic's excludes cache reads and writes; every client's total input is the upstream's, and its output too."""
    _, final = answer(client, upstream)
    uncached, reads, writes, output = UPSTREAM_USAGE[upstream]
    assert usage_of(client, final) == (uncached + reads + writes, reads, output)


@pytest.mark.parametrize(("client", "upstream"), [(M, R), (R, M)], ids=["messages-client-on-responses", "responses-client-on-messages"])
def test_bug_class_reasoning_kept_for_the_next_turn_on_the_same_provider(client: Protocol, upstream: Protocol) -> None:
    """Reasoning dropped so the next turn loses context (CLIProxyAPI #3731; caozhiyuan/copilot-api #54): what the
    upstream reasoned comes back to it on the next turn — as Codex's encrypted item, as Claude's signed block —
    through the client's own protocol (the live version: tests/e2e/test_reasoning_carry.py)."""
    sign, own = carry.signer("up", 1), carry.own_blobs("up", 1)
    reader = responses_stream.StreamReader(sign) if upstream is R else messages_stream.StreamReader(sign)
    writer: Any = messages_stream.StreamWriter("m", 9) if client is M else responses_stream.StreamWriter("m")
    events = upstream_stream(upstream)
    if upstream is R:  # the interleaved plan's reasoning item has no summary; this one has
        events = [e for e in events if not (isinstance(e, dict) and mapping(e.get("item")).get("type") == "reasoning")]
        item = {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": THOUGHT}],
            "encrypted_content": "gAAAAB-own",
        }
        events.insert(1, {"type": "response.output_item.added", "output_index": 0, "item": dict(item, summary=[], encrypted_content=None)})
        events.insert(2, {"type": "response.output_item.done", "output_index": 0, "item": item})
    final = rebuilt(client, b"".join(writer.write(reader.read(data)) for data in events))
    if client is M:
        history = {
            "model": "m",
            "max_tokens": 9,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
            ],
        }
        sent = responses.write_request(messages.read_request(history), own)
        assert [i for i in sent["input"] if i["type"] == "reasoning"] == [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": THOUGHT}], "encrypted_content": "gAAAAB-own"}
        ]
    else:
        history = {
            "model": "m",
            "input": [{"role": "user", "content": "hi"}, *[item.model_dump(exclude_none=True) for item in final.output]],
        }
        sent = messages.write_request(responses.read_request(history), own)
        signature = next(e["delta"]["signature"] for e in events if e.get("type") == "content_block_delta" and "signature" in e["delta"])
        assert sent["messages"][1]["content"][0] == {"type": "thinking", "thinking": THOUGHT, "signature": signature}
