"""The cost translation adds, in process, against the native Codex path measured in the same run: per request
(a Claude-Code-shaped Messages body read and written as Responses, then Codex's own preparation) and per streamed
event (the Responses event read and written as Anthropic SSE, beside Codex's native per-event transform)."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from core.sse import SSEParser
from providers.codex.body import normalise_body
from providers.codex.stream import CodexState, make_transformer
from providers.protocols import messages, messages_stream, responses, responses_stream


def claude_code_body(turns: int) -> dict[str, Any]:
    """A session `turns` tool round trips long, shaped like Claude Code's requests."""
    history: list[dict[str, Any]] = [{"role": "user", "content": "fix the failing test"}]
    for n in range(turns):
        history.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Reading file {n}."},
                    {"type": "tool_use", "id": f"call_{n}", "name": "Read", "input": {"path": f"src/module_{n}.py"}},
                ],
            }
        )
        history.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"call_{n}", "content": "x = 1\n" * 40}]})
    tools = [
        {
            "name": f"Tool{n}",
            "description": "does a thing " * 20,
            "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
        }
        for n in range(20)
    ]
    return {
        "model": "gpt-5.4",
        "max_tokens": 32000,
        "temperature": 1,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code. " * 200}],
        "tools": tools,
        "messages": history,
    }


def native_body(body: dict[str, Any]) -> dict[str, Any]:
    """The same conversation as a Codex CLI would send it (what the native path prepares)."""
    return responses.write_request(messages.read_request(body))


def codex_events(chunks: int) -> list[bytes]:
    from tests.fakes.codex import FakeCodex  # the fake's events are the real backend's shape

    fake = FakeCodex()
    fake.text_chunks = [f"word{n} " for n in range(chunks)]
    return fake.events({"model": "gpt-5.4"})


def paired_us(first: Any, second: Any, pairs: int) -> tuple[float, float, float, list[float]]:
    """`pairs` calls of each, back to back (the order swapped every pair): the medians of each (µs), the median of
    the differences first − second, and their interquartile range."""
    one, two, diffs = [], [], []
    for index in range(pairs):
        timing = [0.0, 0.0]
        for which in (0, 1) if index % 2 == 0 else (1, 0):
            run = (first, second)[which]
            started = time.perf_counter()
            run()
            timing[which] = (time.perf_counter() - started) * 1e6
        one.append(timing[0])
        two.append(timing[1])
        diffs.append(timing[0] - timing[1])
    quartiles = statistics.quantiles(diffs, n=4)
    return statistics.median(one), statistics.median(two), statistics.median(diffs), [quartiles[0], quartiles[2]]


def measure(turns: int = 100, chunks: int = 200, repeat: int = 20) -> dict[str, Any]:
    """Translated against native, in process, in `repeat` × 10 pairs of calls (the proxy's own work is the same both
    ways): the median of each and of their differences, with the differences' interquartile range."""
    body = claude_code_body(turns)
    native = native_body(body)

    def translated_request() -> None:
        normalise_body(responses.write_request(messages.read_request(body)), "gpt-5.4", written=True)  # as Codex's prepare does

    def native_request() -> None:
        normalise_body(native, "gpt-5.4")

    chunks_in = codex_events(chunks)
    count = sum(len(SSEParser().feed(chunk)) for chunk in chunks_in)

    def translated_stream() -> None:  # parsed afresh each time, as on the wire: the JSON of every event is read
        parser, reader, writer = SSEParser(), responses_stream.StreamReader(), messages_stream.StreamWriter("gpt-5.4", 1000)
        for chunk in chunks_in:
            for event in parser.feed(chunk):
                data = event.json()
                writer.write(reader.read(data))

    def native_stream() -> None:  # Codex's own transform looks into a few events only
        parser, transform = SSEParser(), make_transformer(CodexState(session_id="s", client_stream=True))
        for chunk in chunks_in:
            for event in parser.feed(chunk):
                transform(event)

    request_translated, request_native, request_added, request_iqr = paired_us(translated_request, native_request, repeat * 10)
    stream_translated, stream_native, stream_added, _ = paired_us(translated_stream, native_stream, repeat * 2)
    return {
        "body_kb": len(str(body)) / 1024,
        "request_translated_us": request_translated,
        "request_native_us": request_native,
        "request_added_ms": request_added / 1000,
        "request_added_iqr_ms": [value / 1000 for value in request_iqr],
        "events": count,
        "event_translated_us": stream_translated / count,
        "event_native_us": stream_native / count,
        "event_added_us": stream_added / count,
    }


def upstream_events(protocol: str, chunks: int) -> list[bytes]:
    """A streamed answer of `chunks` text pieces and a tool call, as each upstream protocol's fake sends it."""
    from tests.fakes.anthropic import FakeAnthropic
    from tests.fakes.base import Recorded, Stream
    from tests.fakes.openai import FakeOpenAI

    pieces = [f"word{n} " for n in range(chunks)]
    if protocol == "responses":
        return codex_events(chunks)
    if protocol == "messages":
        claude = FakeAnthropic()
        claude.text_chunks = pieces
        body = {"model": "claude", "stream": True, "messages": [], "tools": [{"name": "Read"}]}
        reply = claude.messages(Recorded("POST", "/v1/messages", {}, json.dumps(body).encode(), 0.0))
    else:
        openai = FakeOpenAI()
        openai.text_chunks, openai.chat_calls = pieces, True
        tool = {"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}}
        body = {
            "model": "gpt-4.1",
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [tool],
            "messages": [{"role": "user", "content": "hi"}],
        }
        reply = openai.chat(Recorded("POST", "/v1/chat/completions", {}, json.dumps(body).encode(), 0.0))
    assert isinstance(reply, Stream)
    return reply.events


def directions(turns: int = 100, chunks: int = 200, repeat: int = 20) -> dict[str, dict[str, float]]:
    """Every direction Kleis translates (client ← upstream), in process: a request of `turns` tool round trips read
    in the client's protocol and written in the upstream's, and each event of a `chunks`-piece answer read in the
    upstream's protocol and written in the client's. The whole cost of translating: the native path does none of it."""
    from providers.protocols import chat, chat_stream

    turn = messages.read_request(claude_code_body(turns))
    read = {"messages": messages.read_request, "responses": responses.read_request, "chat": chat.read_request}
    write = {"messages": messages.write_request, "responses": responses.write_request, "chat": chat.write_request}
    bodies = {name: writer(turn) for name, writer in write.items()}  # the conversation as each client sends it
    readers = {"messages": messages_stream.StreamReader, "responses": responses_stream.StreamReader, "chat": chat_stream.StreamReader}
    writers = {
        "messages": lambda: messages_stream.StreamWriter("m", 1000),
        "responses": lambda: responses_stream.StreamWriter("m"),
        "chat": lambda: chat_stream.StreamWriter("m", include_usage=True),
    }
    cases: dict[str, tuple[Any, Any, int, float]] = {}  # direction: (request, stream, events, body KB)
    for upstream in ("messages", "responses", "chat"):
        raw = upstream_events(upstream, chunks)
        count = sum(len(SSEParser().feed(chunk)) for chunk in raw)
        for client in ("messages", "responses", "chat"):
            if client == upstream:
                continue

            def request(client: str = client, upstream: str = upstream) -> None:
                write[upstream](read[client](bodies[client]))

            def stream(client: str = client, upstream: str = upstream, raw: list[bytes] = raw) -> None:
                parser, reader, writer = SSEParser(), readers[upstream](), writers[client]()
                for chunk in raw:
                    for event in parser.feed(chunk):
                        data = event.json()
                        writer.write(reader.read(data if data is not None else (event.data or "").strip()))

            cases[f"{client}←{upstream}"] = (request, stream, count, len(str(bodies[client])) / 1024)
    requests, streams = (
        interleaved({name: case[0] for name, case in cases.items()}, repeat * 5),
        interleaved({name: case[1] for name, case in cases.items()}, repeat * 2),
    )
    return {
        name: {"request_ms": requests[name] / 1000, "event_us": streams[name] / count, "body_kb": kb}
        for name, (_, _, count, kb) in cases.items()
    }


def interleaved(runs: dict[str, Any], rounds: int) -> dict[str, float]:
    """The median time (µs) of one call of each, over `rounds` rounds that call each once in turn: a slow moment of
    the shared machine falls on every direction alike, not on the one measured while it lasts."""
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            timings[name].append((time.perf_counter() - started) * 1e6)
    return {name: statistics.median(values) for name, values in timings.items()}
