"""Chat Completions in the translation core: chat requests read into a turn (and on to Messages and Responses),
neutral streams written as chat chunks, checked by the openai SDK's own chat stream accumulator; the bug classes
peers hit, by name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._models import construct_type_unchecked
from openai._types import omit
from openai.lib.streaming.chat._completions import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from core.sse import SSEParser
from providers.protocols import chat, chat_stream, messages, responses, responses_stream
from providers.protocols.turn import Untranslatable
from tests.fakes.codex import FakeCodex

AIDER_LIKE = {
    "model": "claude-sonnet-4-5",
    "temperature": 0,
    "stream": True,
    "messages": [
        {"role": "system", "content": "Act as an expert software developer."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "fix it"}, {"type": "image_url", "image_url": {"url": "https://x/shot.png"}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "read", "arguments": '{"p":1}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "x = 1"},
        {"role": "system", "content": "Reply with a diff."},
    ],
    "tools": [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}],
    "tool_choice": "required",
    "max_completion_tokens": 4000,
    "stop": ["<<END>>"],
}


def test_a_chat_request_becomes_a_messages_request() -> None:
    body = messages.write_request(chat.read_request(AIDER_LIKE))
    assert body["system"] == "Act as an expert software developer."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "fix it"}, {"type": "image", "source": {"type": "url", "url": "https://x/shot.png"}}],
        },
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "read", "input": {"p": 1}}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "x = 1"},
                {"type": "text", "text": "Reply with a diff."},
            ],
        },
    ]  # the trailing system reminder stays where the agent put it, after the person's turn
    assert (body["max_tokens"], body["temperature"], body["stop_sequences"], body["tool_choice"]) == (
        4000,
        0.0,
        ["<<END>>"],
        {"type": "any"},
    )


def test_a_chat_request_becomes_a_responses_request_and_stop_has_no_equivalent_there() -> None:
    with pytest.raises(Untranslatable, match="^stop:"):
        responses.write_request(chat.read_request(AIDER_LIKE))
    body = responses.write_request(chat.read_request({**AIDER_LIKE, "stop": None}))
    assert body["tool_choice"] == "required" and body["input"][-2] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "x = 1",
    }
    assert body["input"][-1]["role"] == "developer"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"audio": {"voice": "x"}}, "audio"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_fields_with_no_equivalent_are_a_400_naming_them(change: dict, field: str) -> None:
    with pytest.raises(Untranslatable) as refused:
        chat.read_request({**AIDER_LIKE, **change})
    assert refused.value.field == field and refused.value.status == 400


def test_regression_an_orphan_tool_message_is_a_clear_400() -> None:
    with pytest.raises(Untranslatable, match="messages.0.tool_call_id"):
        chat.read_request({"model": "m", "messages": [{"role": "tool", "tool_call_id": "call_x", "content": "?"}]})


# -- streams ---------------------------------------------------------------------------------------------------------


def codex_stream(**plan: Any) -> bytes:
    fake = FakeCodex()
    for name, value in plan.items():
        setattr(fake.plan, name, value)
    return b"".join(fake.events({"model": "gpt-5.4"}))


def translate(stream: bytes, cuts: list[int] | None = None, include_usage: bool = True) -> bytes:
    reader, writer, parser = responses_stream.StreamReader(), chat_stream.StreamWriter("gpt-5.4", include_usage), SSEParser()
    out, start = [], 0
    for cut in [*sorted(set(cuts or [])), len(stream)]:
        for event in parser.feed(stream[start:cut]):
            out.append(writer.write(reader.read(event.json())))
        start = cut
    return b"".join(out)


def final(sse: bytes) -> Any:
    state = ChatCompletionStreamState(input_tools=omit, response_format=omit)
    events = SSEParser().feed(sse)
    assert events[-1].data == "[DONE]" and all(event.event is None for event in events)  # data-only, as OpenAI streams
    for event in events[:-1]:
        state.handle_chunk(construct_type_unchecked(type_=ChatCompletionChunk, value=event.json()))  # type: ignore[arg-type]
    return state.get_final_completion()


def test_regression_finish_reason_arguments_and_usage_after_a_tool_call() -> None:
    sse = translate(codex_stream(interleaved=True))
    completion = final(sse)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Hi there"
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "read_file", '{"path":"README.md"}')  # once
    usage = completion.usage  # upstream: 120 in (100 cached), 30 out: the cached are counted once, inside prompt_tokens
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.total_tokens) == (120, 100, 150)
    chunks = [e.json() for e in SSEParser().feed(sse)[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert sum(1 for c in chunks if "role" in (c["choices"][0]["delta"] if c["choices"] else {})) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 120  # the usage chunk, last
    assert b"gAAAA" not in sse


def test_without_include_usage_there_is_no_usage_chunk_and_a_non_streamed_answer_is_one_completion() -> None:
    sse = translate(codex_stream(), include_usage=False)
    assert all(chunk.json()["choices"] for chunk in SSEParser().feed(sse)[:-1])
    writer, reader = chat_stream.StreamWriter("gpt-5.4"), responses_stream.StreamReader()
    for event in SSEParser().feed(codex_stream(interleaved=True)):
        writer.write(reader.read(event.json()))
    completion = writer.completion()
    assert completion["object"] == "chat.completion" and completion["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"path": "README.md"}


def chunks_of(sse: bytes) -> list[Any]:
    """The chunks without their `created` second (the one thing that may differ between two runs)."""
    return [{k: v for k, v in e.json().items() if k != "created"} if isinstance(e.json(), dict) else e.data for e in SSEParser().feed(sse)]


SPLIT = codex_stream(interleaved=True)
WHOLE = chunks_of(translate(SPLIT))


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(SPLIT) - 1), max_size=30))
def test_any_split_translates_the_same(cuts: list[int]) -> None:
    assert chunks_of(translate(SPLIT, cuts)) == WHOLE


# -- which provider, when several can serve a model --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "accounts", "expected"),
    [
        ("claude-sonnet-4-5", ("claude", "copilot"), ("claude", "chat→messages")),  # the model's own family wins
        ("gpt-5.4", ("codex", "copilot"), ("codex", "chat→responses")),
        ("claude-sonnet-4-5", ("copilot",), ("copilot", "")),  # Copilot when it is the only one
        ("copilot/claude-sonnet-4.5", ("claude", "copilot"), ("copilot", "")),  # or when asked by prefix
        ("gpt-4.1", ("codex", "copilot"), ("copilot", "")),  # a model no plan's family claims stays native
    ],
)
def test_a_chat_model_goes_to_its_own_family_when_there_is_an_account(
    model: str, accounts: tuple[str, ...], expected: tuple, config
) -> None:
    from engine.context import begin
    from engine.pipeline import route
    from providers.claude import ClaudeProvider
    from providers.codex import CodexProvider
    from providers.copilot import CopilotProvider
    from providers.serving import Tables
    from providers.translated import translations
    from store.keys import KeyRecord
    from tests.support.accounts import view

    providers = {"claude": ClaudeProvider(config), "codex": CodexProvider(config), "copilot": CopilotProvider(config)}
    ctx = begin("POST", "/v1/chat/completions")
    ctx.client.key = KeyRecord(1, "kl_x", "k", "h", (), (), None, None)
    ctx.client.model = model
    route(ctx, Tables(providers, [view(n, provider) for n, provider in enumerate(accounts, 1)], None, translations(providers)))
    assert ctx.route.resolution is not None and (ctx.route.resolution.provider, ctx.route.translation) == expected
