"""Agent-sized requests: coding agents resend the whole conversation every turn, so late in a session a request is
0.3–2 MB of JSON. Kleis against bare mitmproxy at body sizes from 16 KB to 1.5 MB in two shapes — Claude Code's (its
user-agent and identity block: Kleis forwards its bytes as they are) and OpenCode's (lower-case tool names, a string
system prompt: Kleis renames the tools, adds the identity block and writes the body anew) — and the lateness of a
third client's stream events while two clients post 1 MB bodies."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from bench.client import Connection, EventClock, alternated, body_of, percentile

PATH = "/v1/messages"
CLAUDE_CODE_TOOLS = ("Read", "Edit", "Bash", "Grep", "Glob", "Write", "TodoWrite", "WebFetch")
CLAUDE_CODE_HEADERS = {"user-agent": "claude-cli/2.1.332 (external, cli)", "x-app": "cli"}
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


def headers_for(shape: str) -> dict[str, str]:
    """What a client of `shape` sends besides its body: Claude Code's user-agent and x-app, nothing for OpenCode."""
    return CLAUDE_CODE_HEADERS if shape == "claude-code" else {}


def agent_body(size: int, shape: str) -> bytes:
    """A Messages request of about `size` bytes: system prompt, ~20 tool schemas, then tool round trips (each a
    tool_use and its tool_result) until the size is reached. `shape` is "claude-code" or "opencode". Written as
    agents (Node's JSON.stringify) write it: non-ASCII text as UTF-8, not as \\u escapes."""
    claude_code = shape == "claude-code"
    names = [CLAUDE_CODE_TOOLS[n % len(CLAUDE_CODE_TOOLS)] + ("" if n < len(CLAUDE_CODE_TOOLS) else str(n)) for n in range(20)]
    if not claude_code:
        names = [name.lower() for name in names]
    tools = [
        {
            "name": name,
            "description": "Performs an operation on the workspace. " * 12,
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "limit": {"type": "number"}},
                "required": ["path"],
            },
        }
        for name in names
    ]
    system_text = "You are an interactive CLI tool that helps users with software engineering tasks. " * 40
    system: Any = (
        [{"type": "text", "text": IDENTITY}, {"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}]
        if claude_code
        else system_text
    )
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 16, "system": system, "tools": tools, "messages": []}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the failing test in the parser module."}]
    used, n = len(json.dumps(body)), 0
    while used < size:
        call = {"type": "tool_use", "id": f"toolu_{n:06d}", "name": names[n % len(names)], "input": {"path": f"src/m{n}.py", "limit": 2.5}}
        result = {"type": "tool_result", "tool_use_id": f"toolu_{n:06d}", "content": "    x = compute(value, 1.25)\n" * 30}
        pair = [
            {"role": "assistant", "content": [{"type": "text", "text": f"Reading module {n} — ✅ {n % 7} tests pass…"}, call]},
            {"role": "user", "content": [result]},
        ]
        messages += pair
        used += len(json.dumps(pair, ensure_ascii=False).encode()) + 2
        n += 1
    messages.append({"role": "user", "content": "Go on."})
    body["messages"] = messages
    return json.dumps(body, ensure_ascii=False).encode()


async def sequential(url: str, headers: dict[str, str], body: bytes, count: int, warmup: int = 3) -> list[float]:
    """`count` sequential requests with `body` on one keep-alive connection: milliseconds each."""
    connection = await Connection(url).open()
    timings = []
    try:
        for index in range(warmup + count):
            started = time.perf_counter()
            status, _, _ = await connection.request("POST", PATH, {"content-type": "application/json", **headers}, body)
            if status != 200:
                raise RuntimeError(f"{url} answered {status} to a {len(body)} byte body")
            if index >= warmup:
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        await connection.close()
    return timings


Target = tuple[str, dict[str, str]]  # URL and the headers to send it


async def paired(first: Target, second: Target, body: bytes, count: int, warmup: int = 3) -> list[tuple[float, float]]:
    """`count` pairs of requests with `body`, one to each target on its own keep-alive connection, back to back (the
    order swapped every pair), so that a slow moment of the shared machine falls on both: milliseconds (first, second)."""
    connections = [await Connection(url).open() for url, _ in (first, second)]
    headers = [{"content-type": "application/json", **extra} for _, extra in (first, second)]

    async def timed(which: int) -> float:
        started = time.perf_counter()
        status, _, _ = await connections[which].request("POST", PATH, headers[which], body)
        if status != 200:
            raise RuntimeError(f"{(first, second)[which][0]} answered {status} to a {len(body)} byte body")
        return (time.perf_counter() - started) * 1000

    try:
        return await alternated(lambda: timed(0), lambda: timed(1), count, warmup)
    finally:
        for connection in connections:
            await connection.close()


def sizes(targets: dict[str, tuple[str, dict[str, str]]], sizes_kb: list[int], count: int) -> list[dict[str, Any]]:
    """Per size and shape: bare and Kleis p50, and what Kleis adds — the median of the differences of `count`
    requests paired with a bare one sent just before or after it (with its interquartile range), and the ratio."""
    rows = []
    for shape in ("claude-code", "opencode"):
        for kb in sizes_kb:
            body = agent_body(kb * 1024, shape)
            extra = headers_for(shape)
            (bare_url, bare_headers), (kleis_url, kleis_headers) = targets["bare"], targets["kleis"]
            pairs = asyncio.run(paired((bare_url, {**bare_headers, **extra}), (kleis_url, {**kleis_headers, **extra}), body, count))
            diffs = [kleis - bare for bare, kleis in pairs]
            bare_p50, kleis_p50 = percentile([p[0] for p in pairs], 50), percentile([p[1] for p in pairs], 50)
            rows.append(
                {
                    "shape": shape,
                    "kb": round(len(body) / 1024),
                    "bare_p50_ms": bare_p50,
                    "kleis_p50_ms": kleis_p50,
                    "added_ms": statistics.median(diffs),
                    "added_iqr_ms": [percentile(diffs, 25), percentile(diffs, 75)],
                    "ratio": kleis_p50 / bare_p50 if bare_p50 else float("nan"),
                }
            )
    return rows


async def lateness_under_load(
    url: str, headers: dict[str, str], big: bytes, events: int, interval: float, posters: int = 2, fresh: bool = False
) -> dict[str, Any]:
    """A stream of `events` events `interval` apart while `posters` clients post `big` bodies back to back: how late
    each event reaches its client (arrival − the upstream's send stamp). `fresh`: a new connection for every post
    (an error answer may close it)."""
    stream_body = body_of(1024, stream=True, events=events, interval=interval)
    done = asyncio.Event()
    posted = 0

    async def poster() -> None:
        nonlocal posted
        connection = await Connection(url).open()
        try:
            while not done.is_set():
                await connection.request("POST", PATH, {"content-type": "application/json", **headers}, big)
                posted += 1
                if fresh:
                    await connection.close()
                    connection = await Connection(url).open()
        finally:
            await connection.close()

    async def streamer() -> list[float]:
        clock = EventClock()
        connection = await Connection(url).open()
        try:
            await asyncio.sleep(0.05)  # the posters are busy first
            await connection.request("POST", PATH, {"content-type": "application/json", **headers}, stream_body, clock)
        finally:
            await connection.close()
            done.set()
        return [lag * 1000 for lag in clock.lags]

    results = await asyncio.gather(streamer(), *(poster() for _ in range(posters)))
    lags: list[float] = results[0]
    return {
        "events": len(lags),
        "posted": posted,
        "p50_ms": percentile(lags, 50),
        "p99_ms": percentile(lags, 99),
        "max_ms": max(lags) if lags else float("nan"),
    }


def bad_bodies(string_mb: int) -> dict[str, bytes]:
    """Bodies a client may send by mistake or on purpose: JSON nested 100,000 deep (Kleis answers 400), one string of
    `string_mb` MB and a million numbers (both forwarded)."""
    head = b'{"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], "metadata": '
    return {
        "nested 100,000 deep": head + b"[" * 100_000 + b"]" * 100_000 + b"}",
        f"one {string_mb} MB string": body_of(string_mb * 1024 * 1024),
        "a million numbers": head + json.dumps({"values": list(range(1_000_000))}).encode() + b"}",
    }


def measure(targets: dict[str, tuple[str, dict[str, str]]], settings: dict[str, Any]) -> dict[str, Any]:
    """The size rows, and stream lateness while two clients post big bodies: Claude Code's (with its headers: Kleis
    forwards them unread) and OpenCode's (Kleis reads and writes them anew)."""
    lateness: dict[str, Any] = {}
    for shape in ("claude-code", "opencode"):
        big = agent_body(settings["load_body_kb"] * 1024, shape)
        extra = headers_for(shape)
        lateness[shape] = {
            name: asyncio.run(lateness_under_load(url, {**headers, **extra}, big, settings["lateness_events"], settings["stream_interval"]))
            for name, (url, headers) in targets.items()
            if name != "direct"
        }
    sized = sizes(targets, settings["body_sizes_kb"], settings["body_requests"])
    return {"sizes": sized, "lateness": lateness}


def bad_input(targets: dict[str, tuple[str, dict[str, str]]], settings: dict[str, Any]) -> dict[str, Any]:
    """Stream lateness while one client posts each of `bad_bodies`, back to back."""
    return {
        label: {
            name: asyncio.run(
                lateness_under_load(url, headers, body, settings["lateness_events"], settings["stream_interval"], posters=1, fresh=True)
            )
            for name, (url, headers) in targets.items()
            if name != "direct"
        }
        for label, body in bad_bodies(settings["bad_string_mb"]).items()
    }
