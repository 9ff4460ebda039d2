"""The cost translation adds, in process, against the native Codex path measured in the same run: per request
(a Claude-Code-shaped Messages body read and written as Responses, then Codex's own preparation) and per streamed
event (the Responses event read and written as Anthropic SSE, beside Codex's native per-event transform)."""

from __future__ import annotations

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


def per_call_us(run: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            run()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def measure(turns: int = 100, chunks: int = 200, repeat: int = 20) -> dict[str, float]:
    """Best of five runs of `repeat` calls each (in-process CPU cost; the proxy's own work is the same both ways)."""
    body = claude_code_body(turns)
    native = native_body(body)

    def translated_request() -> None:
        normalise_body(responses.write_request(messages.read_request(body)), "gpt-5.4")

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

    request_translated, request_native = per_call_us(translated_request, repeat), per_call_us(native_request, repeat)
    stream_translated, stream_native = per_call_us(translated_stream, repeat), per_call_us(native_stream, repeat)
    return {
        "body_kb": len(str(body)) / 1024,
        "request_translated_us": request_translated,
        "request_native_us": request_native,
        "request_added_ms": (request_translated - request_native) / 1000,
        "events": count,
        "event_translated_us": stream_translated / count,
        "event_native_us": stream_native / count,
        "event_added_us": (stream_translated - stream_native) / count,
    }
