"""Property: a conversation keeps its meaning through any translation and back, A → B → A for all six directions.
Random well-formed turns with every part kind a client sends — text, images (base64 and URL), tool calls with JSON
arguments, their results — written in the client's protocol, read, written in the upstream's, read, and written
and read in the client's again."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.codex.body import normalise_body
from providers.protocols import carry, chat, messages, responses
from providers.protocols.turn import Image, Message, Part, Reasoning, Text, Tool, ToolCall, ToolResult, Turn

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(str.strip)
NAMES = ("read", "write", "bash", "grep")
ARGUMENTS = st.dictionaries(st.sampled_from(["path", "n", "flag", "pattern"]), st.one_of(st.integers(), WORDS, st.booleans()), max_size=3)
IMAGES = st.sampled_from([PNG, "https://example.test/a.png", "https://example.test/b.jpg?size=large"])
READ = {"messages": messages.read_request, "responses": responses.read_request, "chat": chat.read_request}
WRITE = {"messages": messages.write_request, "responses": responses.write_request, "chat": chat.write_request}
DIRECTIONS = [(client, upstream) for client in READ for upstream in READ if client != upstream]


@st.composite
def turns(draw: st.DrawFn) -> Turn:
    """User and assistant turns in alternation: a user's results for the calls before, then its text and images; an
    assistant's text, then its calls."""
    ids = iter(f"call_{n}" for n in range(1000))
    listed: list[Message] = []
    pending: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        user: list[Part] = [ToolResult(call, (Text(draw(WORDS)),)) for call in pending]
        user += [Text(draw(WORDS))] + [Image(url) for url in draw(st.lists(IMAGES, max_size=2))]
        listed.append(Message("user", tuple(user)))
        calls = [ToolCall(next(ids), draw(st.sampled_from(NAMES)), json.dumps(draw(ARGUMENTS))) for _ in range(draw(st.integers(0, 3)))]
        said = [Text(draw(WORDS))] if draw(st.booleans()) or not calls else []
        listed.append(Message("assistant", (*said, *calls)))
        pending = [call.id for call in calls]
    listed.append(Message("user", (*(ToolResult(call, (Text(draw(WORDS)),)) for call in pending), Text(draw(WORDS)))))
    tools = tuple(Tool(name, f"the {name} tool", {"type": "object", "properties": {}}) for name in NAMES)
    return Turn(model="m", system=draw(WORDS), messages=tuple(listed), tools=tools, max_tokens=1000)


def meaning(turn: Turn) -> tuple[Any, ...]:
    def part(p: Any) -> Any:
        if isinstance(p, ToolCall):
            return ("call", p.id, p.name, json.loads(p.arguments))
        if isinstance(p, ToolResult):
            return ("result", p.call_id, tuple(c.text if isinstance(c, Text) else c.url for c in p.content), p.is_error)
        if isinstance(p, Image):
            return ("image", p.url)
        return ("text", p.text)

    return turn.system, tuple((m.role, tuple(part(p) for p in m.parts)) for m in turn.messages), tuple(t.name for t in turn.tools)


def through(protocol: str, turn: Turn) -> Turn:
    return READ[protocol](WRITE[protocol](turn))


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS, ids=[f"{c}-via-{u}" for c, u in DIRECTIONS])
@settings(max_examples=40, deadline=None)
@given(turn=turns())
def test_a_conversation_keeps_its_meaning_there_and_back(client: str, upstream: str, turn: Turn) -> None:
    sent = through(client, turn)  # the conversation as the client's protocol holds it
    assert meaning(sent) == meaning(turn)  # (every part kind here has a place in every protocol)
    assert meaning(through(client, through(upstream, sent))) == meaning(sent)


# -- the Messages reader's two paths --------------------------------------------------------------------------------
ODD = st.one_of(st.none(), st.integers(-1, 1), st.booleans(), WORDS, st.just([]), st.just({}))
BLOCKS = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": WORDS}, optional={"cache_control": st.just({"type": "ephemeral"})}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": WORDS, "name": st.sampled_from(NAMES), "input": ARGUMENTS}),
    st.fixed_dictionaries(
        {"type": st.just("tool_result"), "tool_use_id": WORDS},
        optional={
            "content": st.one_of(WORDS, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": WORDS}), max_size=2)),
            "is_error": st.booleans(),
        },
    ),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": WORDS}, optional={"signature": WORDS}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": WORDS}),
    st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "source": st.sampled_from(
                [
                    {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    {"type": "url", "url": "https://example.test/a.png"},
                    {"type": "file"},
                ]
            ),
        }
    ),
)


@st.composite
def odd_block(draw: st.DrawFn) -> Any:
    """A block as clients send them, or one with a field missing, null, mistyped, or an unknown type."""
    block = dict(draw(BLOCKS))
    how = draw(st.sampled_from(["as is", "as is", "drop", "replace", "unknown type", "not an object"]))
    if how == "drop" and len(block) > 1:
        del block[draw(st.sampled_from(sorted(set(block) - {"type"})))]
    elif how == "replace":
        block[draw(st.sampled_from(sorted(block)))] = draw(ODD)
    elif how == "unknown type":
        block["type"] = "document"
    elif how == "not an object":
        return draw(ODD)
    return block


WELL_FORMED = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.one_of(WORDS, st.lists(BLOCKS, max_size=4))}
    ),
    max_size=5,
)
ODD_ONES = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"])},
        optional={"content": st.one_of(WORDS, st.lists(odd_block(), max_size=4), ODD)},
    ),
    max_size=5,
)
CONVERSATIONS = st.one_of(WELL_FORMED, ODD_ONES)


@settings(max_examples=400, deadline=None)
@given(listed=CONVERSATIONS)
def test_the_messages_readers_fast_path_reads_what_its_step_by_step_path_reads(listed: list[Any]) -> None:
    """msgspec reads a well-formed conversation; whatever it refuses is read step by step. Either way the turn (or
    the 400 and the field it names) is the step-by-step reader's."""

    def outcome(read: Any) -> Any:
        try:
            return read()
        except messages.Untranslatable as refused:
            return ("refused", refused.field)

    def step_by_step() -> tuple[Message, ...]:
        turns = tuple(messages._message(index, message) for index, message in enumerate(listed))
        messages._check_results(turns)
        return turns

    assert outcome(lambda: messages._messages(listed)) == outcome(step_by_step)


# -- the Responses reader's two paths -------------------------------------------------------------------------------
TEXT_PART = st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text", "text"]), "text": WORDS})
PARTS = st.lists(
    st.one_of(
        TEXT_PART,
        st.fixed_dictionaries({"type": st.just("input_image"), "image_url": IMAGES}, optional={"detail": st.just("auto")}),
        st.fixed_dictionaries({"type": st.just("refusal"), "refusal": WORDS}),
    ),
    max_size=3,
)
CALL_IDS = st.sampled_from(["call_1", "call_2", "call_3"])
ITEMS = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("message"),
            "role": st.sampled_from(["user", "assistant", "system", "developer"]),
            "content": st.one_of(WORDS, PARTS),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call"), "call_id": CALL_IDS, "name": st.sampled_from(NAMES), "arguments": st.just('{"a":1}')}
    ),
    st.fixed_dictionaries({"type": st.just("custom_tool_call"), "call_id": CALL_IDS, "name": st.sampled_from(NAMES), "input": WORDS}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["function_call_output", "custom_tool_call_output"]), "call_id": CALL_IDS},
        optional={"output": st.one_of(WORDS, PARTS)},
    ),
    st.fixed_dictionaries(
        {"type": st.just("reasoning")},
        optional={
            "summary": st.lists(st.fixed_dictionaries({"type": st.just("summary_text"), "text": WORDS}), max_size=2),
            "encrypted_content": WORDS,
        },
    ),
)


@st.composite
def odd_item(draw: st.DrawFn) -> Any:
    """An input item as clients send them, or one with a field missing, null or mistyped, or an unknown type."""
    item = dict(draw(ITEMS))
    how = draw(st.sampled_from(["as is", "as is", "drop", "replace", "unknown type", "no type", "not an object"]))
    if how == "drop" and len(item) > 1:
        del item[draw(st.sampled_from(sorted(set(item) - {"type"})))]
    elif how == "replace":
        item[draw(st.sampled_from(sorted(item)))] = draw(ODD)
    elif how == "unknown type":
        item["type"] = "item_reference"
    elif how == "no type":
        del item["type"]
    elif how == "not an object":
        return draw(ODD)
    return item


@settings(max_examples=400, deadline=None)
@given(items=st.one_of(st.lists(ITEMS, max_size=6), st.lists(odd_item(), max_size=6)))
def test_the_responses_readers_fast_path_reads_what_its_step_by_step_path_reads(items: list[Any]) -> None:
    def outcome(read: Any) -> Any:
        system: list[str] = []
        try:
            return read(items, system), system
        except responses.Untranslatable as refused:
            return ("refused", refused.field)

    assert outcome(responses._read_input) == outcome(responses._input_step_by_step)


# -- the Chat reader's two paths ------------------------------------------------------------------------------------
CHAT_PARTS = st.lists(
    st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": WORDS}),
        st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": IMAGES})}),
        st.fixed_dictionaries({"type": st.just("refusal"), "refusal": WORDS}),
    ),
    max_size=3,
)
CHAT_CONTENT = st.one_of(st.none(), st.just(""), WORDS, CHAT_PARTS)
CHAT_CALL = st.fixed_dictionaries(
    {"id": CALL_IDS, "function": st.fixed_dictionaries({"name": st.sampled_from(NAMES), "arguments": st.just('{"a":1}')})},
    optional={"type": st.just("function")},
)
CHAT_MESSAGES = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user"])}, optional={"content": CHAT_CONTENT}),
    st.fixed_dictionaries(
        {"role": st.just("assistant")}, optional={"content": CHAT_CONTENT, "tool_calls": st.lists(CHAT_CALL, max_size=2)}
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": CALL_IDS}, optional={"content": CHAT_CONTENT}),
)


@st.composite
def odd_chat_message(draw: st.DrawFn) -> Any:
    """A message as chat clients send them, or one with a field missing, null or mistyped, or an unknown role."""
    message = dict(draw(CHAT_MESSAGES))
    how = draw(st.sampled_from(["as is", "as is", "drop", "replace", "unknown role", "odd call", "not an object"]))
    if how == "drop" and len(message) > 1:
        del message[draw(st.sampled_from(sorted(set(message) - {"role"})))]
    elif how == "replace":
        message[draw(st.sampled_from(sorted(message)))] = draw(ODD)
    elif how == "unknown role":
        message["role"] = "function"
    elif how == "odd call" and message.get("tool_calls"):
        message["tool_calls"] = [{**message["tool_calls"][0], draw(st.sampled_from(["type", "function", "id"])): draw(ODD)}]
    elif how == "not an object":
        return draw(ODD)
    return message


@settings(max_examples=400, deadline=None)
@given(listed=st.one_of(st.lists(CHAT_MESSAGES, max_size=6), st.lists(odd_chat_message(), max_size=6)))
def test_the_chat_readers_fast_path_reads_what_its_step_by_step_path_reads(listed: list[Any]) -> None:
    def outcome(read: Any) -> Any:
        system: list[str] = []
        try:
            return read(listed, system), system
        except chat.Untranslatable as refused:
            return ("refused", refused.field)

    assert outcome(chat._read_messages) == outcome(chat._read_step_by_step)


# -- what the Responses writer writes needs none of Codex's item cleaning -------------------------------------------
REASONING = st.sampled_from(
    [
        carry.tag("codex", 7, "gAAAA-own"),  # this upstream's own: written back as a reasoning item
        carry.tag("codex", 8, "gAAAA-other-account"),
        carry.tag("claude", 7, "c2ln"),
        carry.tag("codex", 7, carry.tag("claude", 3, "nested")),
        "an-anthropic-signature",
    ]
)


@settings(max_examples=200, deadline=None)
@given(turn=turns(), signatures=st.lists(REASONING, max_size=3), instruction=WORDS)
def test_codex_normalising_a_body_the_responses_writer_wrote_changes_no_item(turn: Turn, signatures: list[str], instruction: str) -> None:
    """normalise_body(written=True) skips the walks that drop ids, system roles, carried reasoning and refused part
    fields: the writer's items must hold none of them, whatever the turn (reasoning from anywhere, a mid-conversation
    system message)."""
    reasoning = tuple(Reasoning("thought", signature) for signature in signatures)
    extra = (Message("assistant", (*reasoning, Text("so"))), Message("system", (Text(instruction),)), Message("user", (Text("go"),)))
    body = responses.write_request(dataclasses.replace(turn, messages=turn.messages + extra), carry.own_blobs("codex", 7))
    assert normalise_body(body, "gpt-5.4")["input"] == body["input"] == normalise_body(body, "gpt-5.4", written=True)["input"]
    assert any(item.get("type") == "reasoning" for item in body["input"]) == (carry.tag("codex", 7, "gAAAA-own") in signatures)
