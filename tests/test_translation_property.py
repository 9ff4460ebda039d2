"""Property: a conversation keeps its meaning through any translation and back, A → B → A for all six directions.
Random well-formed turns with every part kind a client sends — text, images (base64 and URL), tool calls with JSON
arguments, their results — written in the client's protocol, read, written in the upstream's, read, and written
and read in the client's again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.protocols import chat, messages, responses
from providers.protocols.turn import Image, Message, Part, Text, Tool, ToolCall, ToolResult, Turn

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
