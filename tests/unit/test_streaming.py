"""The stream callable: events out as soon as complete, never b"" mid-stream, failures pass bytes through."""

from __future__ import annotations

from engine.streaming import StreamRewriter

EVENTS = [b'event: a\ndata: {"n":1}\n\n', b'event: b\ndata: {"n":2}\n\n', b'event: c\ndata: {"n":3}\n\n']


def test_partial_events_wait_as_an_empty_list_never_empty_bytes() -> None:
    rewriter = StreamRewriter()
    whole = b"".join(EVENTS)
    outputs = [rewriter(whole[i : i + 5]) for i in range(0, len(whole), 5)]
    assert all(isinstance(o, list) for o in outputs)
    assert all(piece != b"" for o in outputs for piece in o)
    assert [] in outputs  # buffering happened
    assert rewriter(b"") == []
    assert b"".join(p for o in outputs for p in o) == whole


def test_transform_and_observers_see_each_event() -> None:
    seen = []
    rewriter = StreamRewriter(
        transform=lambda e: e.raw.replace(b"2", b"two") if e.event == "b" else None,
        observers=[lambda e: seen.append(e.event)],
    )
    out = rewriter(b"".join(EVENTS)) + rewriter(b"")
    assert out == [EVENTS[0], EVENTS[1].replace(b"2", b"two"), EVENTS[2]]
    assert seen == ["a", "b", "c"]


def test_failing_transform_passes_the_original_event() -> None:
    def boom(event):
        raise RuntimeError("bug")

    rewriter = StreamRewriter(transform=boom, observers=[boom])
    assert rewriter(b"".join(EVENTS)) == EVENTS


def test_failing_parser_falls_back_to_pass_through() -> None:
    rewriter = StreamRewriter()
    assert rewriter(b"data: partial") == []

    def broken(final: bool):
        raise ValueError("parser bug")

    rewriter.parser._drain = broken
    assert rewriter(b" more\n\n") == [b"data: partial more\n\n"]
    assert rewriter(b"data: next\n\n") == [b"data: next\n\n"]
    assert rewriter(b"") == []
