"""SSE parsing: any split of a valid stream yields the same events, byte for byte."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from core.sse import SSEParser, format_event, parse_event

STREAM = (
    b'event: message_start\ndata: {"type":"message_start"}\n\n'
    b": keep-alive comment\n\n"
    b'event: content_block_delta\r\ndata: {"text":"a\\nb"}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"event: ping\rdata: {}\r\r"
    b"id: 7\nretry: 1500\ndata:no-space\n\n"
    b"data: [DONE]\n\n"
)


def parse_all(chunks: list[bytes]) -> list:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(set(c % (len(data) + 1) for c in cuts))
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


def test_fields_of_each_event() -> None:
    events = parse_all([STREAM])
    assert [e.event for e in events] == ["message_start", None, "content_block_delta", None, "ping", None, None]
    assert events[0].json() == {"type": "message_start"}
    assert events[2].json() == {"text": "a\nb"}
    assert events[3].data == "line one\nline two"
    assert events[4].data == "{}"
    assert (events[5].id, events[5].retry, events[5].data) == ("7", 1500, "no-space")
    assert events[6].data == "[DONE]" and events[6].json() is None
    assert b"".join(e.raw for e in events) == STREAM


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_any_split_yields_the_same_events(cuts: list[int]) -> None:
    whole = parse_all([STREAM])
    split = parse_all(split_at(STREAM, cuts))
    assert [(e.raw, e.event, e.data, e.id) for e in split] == [(e.raw, e.event, e.data, e.id) for e in whole]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, "a", "content_block_start"]),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30),
        ),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
def test_generated_streams_round_trip(events: list, newline: bytes, cuts: list[int]) -> None:
    raw = b""
    for name, data in events:
        lines = ([b"event: " + name.encode()] if name else []) + [b"data: " + data.encode()]
        raw += newline.join(lines) + newline + newline
    parsed = parse_all(split_at(raw, cuts))
    assert [(e.event, e.data) for e in parsed] == [(name, data) for name, data in events]
    assert b"".join(e.raw for e in parsed) == raw


def test_split_crlf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == []
    events = parser.feed(b"\n")
    assert [e.data for e in events] == ["x"] and events[0].raw == b"data: x\r\n\r\n"


def test_trailing_event_without_blank_line_is_delivered_at_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    assert [e.data for e in parser.close()] == ["tail"]


def test_format_event_parses_back() -> None:
    raw = format_event({"type": "x", "text": "line1\nline2"}, "delta")
    event = parse_event(raw)
    assert event.event == "delta" and json.loads(event.data) == {"type": "x", "text": "line1\nline2"}
    assert raw.endswith(b"\n\n")
