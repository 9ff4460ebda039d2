"""The Chat request writer and stream reader (Kleis → an upstream that serves a model on Chat only, such as
Copilot's chat-only models), and round trips: a random well-formed conversation read from Chat, written as Messages
or Responses and read back, then written as Chat again, keeps its meaning; a random answer written in one protocol
and read back keeps its text, calls, stop reason and usage."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.sse import SSEParser, format_event
from providers.protocols import chat, chat_stream, messages, messages_stream, responses, responses_stream
from providers.protocols import events as ev
from providers.protocols.turn import Image, Message, Text, Tool, ToolCall, ToolChoice, ToolResult, Turn


def parsed(data: bytes) -> list[Any]:
    """The SSE bytes as a reader gets them: JSON objects, and the `[DONE]` marker as its text."""
    out: list[Any] = []
    for event in SSEParser().feed(data):
        out.append(event.json() if event.json() is not None else (event.data or "").strip())
    return out


def read_all(reader: Any, data: bytes) -> list[ev.Event]:
    return [event for item in parsed(data) for event in reader.read(item)]


def test_a_turn_becomes_a_chat_request() -> None:
    turn = Turn(
        model="gpt-4.1",
        system="Be brief.",
        messages=(
            Message("user", (Text("look"), Image("data:image/png;base64,AAAA"))),
            Message("assistant", (Text("Reading."), ToolCall("toolu_1", "read", '{"p":1}'), ToolCall("toolu_2", "ls", "{}"))),
            Message(
                "user",
                (ToolResult("toolu_1", (Text("x = 1"),)), ToolResult("toolu_2", (Text("no such dir"),), is_error=True), Text("go on")),
            ),
            Message("system", (Text("Reply with a diff."),)),
        ),
        tools=(Tool("read", "Read a file", {"type": "object"}), Tool("ls", "", {"type": "object"})),
        tool_choice=ToolChoice("tool", "read", parallel=False),
        max_tokens=900,
        reasoning_effort="low",
        stop=("<<END>>",),
        temperature=0.2,
    )
    body = chat.write_request(turn)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
        },
        {
            "role": "assistant",
            "content": "Reading.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "read", "arguments": '{"p":1}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "x = 1"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no such dir"},
        {"role": "user", "content": "go on"},
        {"role": "system", "content": "Reply with a diff."},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "read"}} and body["parallel_tool_calls"] is False
    assert body["tools"][0] == {
        "type": "function",
        "function": {"name": "read", "description": "Read a file", "parameters": {"type": "object"}},
    }
    assert (body["max_tokens"], body["reasoning_effort"], body["stop"], body["temperature"]) == (900, "low", ["<<END>>"], 0.2)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}  # usage is always read


def test_an_image_in_a_tool_result_follows_the_tool_message_as_user_content() -> None:
    turn = Turn(
        model="gpt-4.1",
        system="",
        messages=(
            Message("assistant", (ToolCall("c1", "shot", "{}"),)),
            Message("user", (ToolResult("c1", (Text("here"), Image("https://x/s.png"))),)),
        ),
    )
    assert chat.write_request(turn)["messages"][1:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "here"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/s.png"}}]},
    ]


COPILOT_STYLE = [  # usage in the finishing chunk, a call whose later chunks carry no id, then [DONE]
    {"id": "chatcmpl-1", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "Let me look"}}]},
    {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"reasoning_text": "hmm"}}]},
    {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "read", "arguments": ""}}]},
            }
        ],
    },
    {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"p":'}}]}}]},
    {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]},
    {
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 30}},
    },
    "[DONE]",
]


def test_a_chat_stream_is_read_into_neutral_events() -> None:
    reader = chat_stream.StreamReader()
    events = [event for chunk in COPILOT_STYLE for event in reader.read(chunk)]
    assert events == [
        ev.Start("chatcmpl-1", "gpt-4.1"),
        ev.BlockStart(0, "text"),
        ev.BlockDelta(0, "Let me look"),
        ev.BlockStop(0),
        ev.BlockStart(1, "tool", "call_9", "read"),
        ev.BlockDelta(1, '{"p":'),
        ev.BlockDelta(1, "1}"),
        ev.BlockStop(1),
        ev.Stop("tool_use", ev.Usage(input=20, output=9, cache_read=30)),
    ]


def test_usage_after_the_finish_chunk_is_waited_for_and_an_error_chunk_is_an_error() -> None:
    reader = chat_stream.StreamReader()
    assert reader.read({"id": "c", "choices": [{"index": 0, "delta": {"content": "ok"}}]})[-1] == ev.BlockDelta(0, "ok")
    assert reader.read({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}) == []
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "completion_tokens_details": {"reasoning_tokens": 2}}
    assert reader.read({"id": "c", "choices": [], "usage": usage}) == [ev.BlockStop(0), ev.Stop("max_tokens", ev.Usage(7, 3, reasoning=2))]
    assert reader.read("[DONE]") == []
    failing = chat_stream.StreamReader()
    failing.read({"id": "c", "choices": [{"index": 0, "delta": {"content": "o"}}]})
    error = failing.read({"error": {"message": "quota exceeded", "code": "rate_limit_exceeded"}})
    assert error == [ev.BlockStop(0), ev.Error("api_error", "quota exceeded", "rate_limit_exceeded")]


# -- round trips ---------------------------------------------------------------------------------------------------
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
NAMES = st.sampled_from(["read", "write", "bash", "grep"])
ARGUMENTS = st.dictionaries(st.sampled_from(["path", "n", "flag"]), st.one_of(st.integers(), WORDS, st.booleans()), max_size=3)


@st.composite
def chat_conversations(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed chat body: a system prompt, then user turns, each answered by calls (each with its result) or text."""
    listed: list[dict[str, Any]] = [{"role": "system", "content": draw(WORDS)}]
    ids = iter(f"call_{n}" for n in range(1000))
    for _ in range(draw(st.integers(1, 4))):
        listed.append({"role": "user", "content": draw(WORDS)})
        for _ in range(draw(st.integers(0, 2))):
            calls = [
                {"id": next(ids), "type": "function", "function": {"name": draw(NAMES), "arguments": json.dumps(draw(ARGUMENTS))}}
                for _ in range(draw(st.integers(1, 3)))
            ]
            listed.append({"role": "assistant", "content": draw(st.one_of(st.none(), WORDS)), "tool_calls": calls})
            listed += [{"role": "tool", "tool_call_id": call["id"], "content": draw(WORDS)} for call in calls]
        listed.append({"role": "assistant", "content": draw(WORDS)})
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}} for name in ("read", "write", "bash", "grep")
    ]
    return {"model": "m", "messages": listed, "tools": tools, "stream": True}


def meaning(turn: Turn) -> tuple[Any, ...]:
    """What a conversation says, as comparable values: each message's role and parts (arguments as JSON values)."""

    def part(p: Any) -> Any:
        if isinstance(p, ToolCall):
            return ("call", p.id, p.name, json.loads(p.arguments))
        if isinstance(p, ToolResult):
            return ("result", p.call_id, "".join(c.text for c in p.content if isinstance(c, Text)), p.is_error)
        return ("text", p.text) if isinstance(p, Text) else p

    return turn.system, tuple((m.role, tuple(part(p) for p in m.parts if not (isinstance(p, Text) and not p.text))) for m in turn.messages)


@settings(max_examples=60, deadline=None)
@given(chat_conversations())
def test_a_chat_conversation_keeps_its_meaning_through_messages_and_responses(body: dict[str, Any]) -> None:
    turn = chat.read_request(body)
    via_messages = chat.read_request(chat.write_request(messages.read_request(messages.write_request(turn))))
    via_responses = chat.read_request(chat.write_request(responses.read_request(responses.write_request(turn))))
    assert meaning(via_messages) == meaning(turn)
    assert meaning(via_responses) == meaning(turn)
    assert [t.name for t in via_messages.tools] == [t.name for t in via_responses.tools] == ["read", "write", "bash", "grep"]


@st.composite
def answers(draw: st.DrawFn) -> list[ev.Event]:
    """A well-formed neutral answer: text, then calls (each with its arguments in pieces), the stop and usage."""
    events: list[ev.Event] = [ev.Start("resp_1", "m")]
    index = 0
    text = draw(st.lists(WORDS, max_size=4))
    if text:
        events += [ev.BlockStart(0, "text"), *(ev.BlockDelta(0, piece) for piece in text), ev.BlockStop(0)]
        index = 1
    calls = draw(st.lists(ARGUMENTS, max_size=3))
    for n, arguments in enumerate(calls):
        encoded = json.dumps(arguments)
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(encoded) - 1)), max_size=3))))
        pieces = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True) if encoded[a:b]]
        events += [ev.BlockStart(index, "tool", f"call_{n}", draw(NAMES)), *(ev.BlockDelta(index, p) for p in pieces), ev.BlockStop(index)]
        index += 1
    usage = ev.Usage(input=draw(st.integers(0, 10**6)), output=draw(st.integers(1, 10**5)), cache_read=draw(st.integers(0, 10**6)))
    events.append(ev.Stop("tool_use" if calls else draw(st.sampled_from(["end_turn", "max_tokens"])), usage))
    return events


def summary(events: list[ev.Event]) -> tuple[Any, ...]:
    """What an answer says: its text, its calls (id, name, arguments as JSON values), stop reason and usage totals."""
    kinds: dict[int, ev.BlockStart] = {}
    text, arguments = "", {}
    stop: ev.Stop | None = None
    for event in events:
        if isinstance(event, ev.BlockStart):
            kinds[event.index] = event
            if event.kind == "tool":
                arguments[event.index] = ""
        elif isinstance(event, ev.BlockDelta):
            if kinds[event.index].kind == "tool":
                arguments[event.index] += event.text
            else:
                text += event.text
        elif isinstance(event, ev.Stop):
            stop = event
    assert stop is not None
    calls = [(kinds[i].id, kinds[i].name, json.loads(a or "{}")) for i, a in arguments.items()]
    usage = stop.usage
    return text, calls, stop.reason, (usage.input + usage.cache_read, usage.cache_read, usage.output)


@settings(max_examples=60, deadline=None)
@given(answers())
def test_an_answer_keeps_its_meaning_through_each_protocols_stream(events: list[ev.Event]) -> None:
    as_chat = read_all(chat_stream.StreamReader(), chat_stream.StreamWriter("m", include_usage=True).write(events))
    as_messages = read_all(messages_stream.StreamReader(), messages_stream.StreamWriter("m", 10).write(events))
    as_responses = read_all(responses_stream.StreamReader(), responses_stream.StreamWriter("m").write(events))
    assert summary(as_chat) == summary(as_messages) == summary(as_responses) == summary(events)
    # and on through Chat again: a Messages (or Responses) upstream answering a Chat client
    again = chat_stream.StreamWriter("m", include_usage=True).write(as_messages)
    assert summary(read_all(chat_stream.StreamReader(), again)) == summary(events)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=2000), max_size=12))
def test_a_chat_stream_split_anywhere_reads_the_same(cuts: list[int]) -> None:
    data = b"".join(format_event(chunk) for chunk in COPILOT_STYLE)
    whole = read_all(chat_stream.StreamReader(), data)
    parser, reader, events = SSEParser(), chat_stream.StreamReader(), []
    bounds = sorted({c % len(data) for c in cuts} | {0, len(data)})
    for start, end in zip(bounds, bounds[1:], strict=False):
        for event in parser.feed(data[start:end]):
            events += reader.read(event.json() if event.json() is not None else (event.data or "").strip())
    assert events == whole and isinstance(whole[-1], ev.Stop)
