"""A fast loopback upstream for benchmarks: asyncio HTTP/1.1 with keep-alive, JSON, stamped SSE, a token endpoint.

Routes (any POST path ending in):
- `/v1/messages` and `/json`: a small JSON answer, or with `"stream": true` an SSE stream of `events` events
  `interval` seconds apart (body fields), each stamped with its send time; with tools, a tool_use block named
  as the request named its first tool (so a proxy's renaming is visible);
- `/codex/responses`: a streamed Responses answer, as the Codex backend sends one (the first-byte row);
- `/v1/oauth/token`: rotating refresh tokens, counted (`GET /stats` returns the counts).
Bodies are read with orjson, as fast as a real API reads them: the standard module took 11–13 ms (and varied by
several) on a 1.5 MB agent body, more than either proxy adds to it.
Run: `python -m bench.upstream` prints `PORT <n>`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import orjson

STATS = {"requests": 0, "connections": 0, "refresh_calls": 0, "reused_refresh": 0}
LIVE_REFRESH: set[str] = set()
USED_REFRESH: set[str] = set()
COUNTER = [0]
REPLY = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 2},
    }
).encode()


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(name: str, data: dict) -> bytes:
    """One SSE event as one chunk of a chunked body."""
    return chunk(sse(name, {"type": name, **data}))


def opening(body: dict) -> bytes:
    """message_start, and for a request with tools the name the upstream saw, in an event no proxy rewrites
    (proof that the renaming happened), then the tool_use block whose name the proxy restores."""
    usage = {"input_tokens": 10, "output_tokens": 1}
    message = {"id": "msg_b", "type": "message", "role": "assistant", "content": [], "model": body.get("model"), "usage": usage}
    out = event("message_start", {"message": message})
    tools = body.get("tools") or []
    if tools:
        name = tools[0].get("name")
        out += event("ping", {"upstream_saw_tool": name})
        out += event("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": "toolu_b", "name": name, "input": {}}})
    return out


async def stream(writer: asyncio.StreamWriter, body: dict) -> None:
    events = int(body.get("events", 50))
    interval = float(body.get("interval", 0.02))
    writer.write(head(200, {"content-type": "text/event-stream", "transfer-encoding": "chunked"}) + opening(body))
    await writer.drain()
    for index in range(events):
        await asyncio.sleep(interval)
        writer.write(
            event("content_block_delta", {"index": 0, "sent": time.time(), "n": index, "delta": {"type": "text_delta", "text": "x"}})
        )
        await writer.drain()
    writer.write(event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": events}}))
    writer.write(event("message_stop", {}) + b"0\r\n\r\n")
    await writer.drain()


async def responses_stream(writer: asyncio.StreamWriter, body: dict) -> None:
    """A Responses answer, as the Codex backend streams one: created, a message item, `events` text deltas
    `interval` seconds apart, the item done, completed with usage."""
    events = int(body.get("events", 20))
    interval = float(body.get("interval", 0.0))
    item = {"type": "message", "id": "msg_b", "role": "assistant", "status": "in_progress", "content": []}
    response = {"id": "resp_b", "object": "response", "status": "in_progress", "model": body.get("model"), "output": []}
    writer.write(head(200, {"content-type": "text/event-stream", "transfer-encoding": "chunked"}))
    writer.write(responses_event("response.created", {"response": response}))
    await writer.drain()
    writer.write(responses_event("response.output_item.added", {"output_index": 0, "item": item}))
    part = {"type": "output_text", "text": "", "annotations": []}
    writer.write(responses_event("response.content_part.added", {"item_id": "msg_b", "output_index": 0, "content_index": 0, "part": part}))
    for _ in range(events):
        if interval:
            await asyncio.sleep(interval)
        delta = {"item_id": "msg_b", "output_index": 0, "content_index": 0, "delta": "x"}
        writer.write(responses_event("response.output_text.delta", delta))
        await writer.drain()
    text = {"type": "output_text", "text": "x" * events, "annotations": []}
    done = {**item, "status": "completed", "content": [text]}
    writer.write(responses_event("response.output_item.done", {"output_index": 0, "item": done}))
    usage = {"input_tokens": 10, "output_tokens": events, "total_tokens": 10 + events}
    completed = {**response, "status": "completed", "output": [done], "usage": usage}
    writer.write(responses_event("response.completed", {"response": completed}) + b"0\r\n\r\n")
    await writer.drain()


def responses_event(name: str, data: dict) -> bytes:
    return chunk(f"event: {name}\ndata: {json.dumps({'type': name, **data}, separators=(',', ':'))}\n\n".encode())


def token(body: dict) -> tuple[int, bytes]:
    if body.get("grant_type") == "refresh_token":
        STATS["refresh_calls"] += 1
        presented = body.get("refresh_token", "")
        if presented in USED_REFRESH:
            STATS["reused_refresh"] += 1
            return 400, b'{"error":"invalid_grant","error_description":"refresh token already used"}'
        LIVE_REFRESH.discard(presented)
        USED_REFRESH.add(presented)
    COUNTER[0] += 1
    refresh = f"sk-ant-ort01-bench-refresh-{COUNTER[0]}"
    LIVE_REFRESH.add(refresh)
    answer = {
        "access_token": f"sk-ant-oat01-bench-access-{COUNTER[0]}",
        "refresh_token": refresh,
        "expires_in": 28800,
        "token_type": "Bearer",
        "account": {"uuid": "bench-account", "email_address": "bench@example.test"},
        "organization": {"uuid": "org", "name": "Bench"},
    }
    return 200, json.dumps(answer).encode()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    STATS["connections"] += 1
    try:
        while True:
            request_head = await reader.readuntil(b"\r\n\r\n")
            lines = request_head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
            length = int(headers.get("content-length", 0))
            raw = await reader.readexactly(length) if length else b""
            STATS["requests"] += 1
            if method == "GET" and path == "/stats":
                data = json.dumps(STATS).encode()
                writer.write(head(200, {"content-type": "application/json", "content-length": str(len(data))}) + data)
            elif path.split("?")[0].endswith("/v1/oauth/token"):
                status, data = token(json.loads(raw or b"{}"))
                writer.write(head(status, {"content-type": "application/json", "content-length": str(len(data))}) + data)
            else:
                try:
                    body = orjson.loads(raw) if raw else {}
                except (ValueError, RecursionError):  # as the API answers a body it cannot read (bench.large's bad input)
                    data = b'{"type":"error","error":{"type":"invalid_request_error","message":"invalid JSON"}}'
                    writer.write(head(400, {"content-type": "application/json", "content-length": str(len(data))}) + data)
                    await writer.drain()
                    continue
                if path.split("?")[0].endswith("/codex/responses"):
                    await responses_stream(writer, body)
                elif body.get("stream"):
                    await stream(writer, body)
                else:
                    writer.write(head(200, {"content-type": "application/json", "content-length": str(len(REPLY))}) + REPLY)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int = 0) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
