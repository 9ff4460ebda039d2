"""The first byte of a translated answer against the native one, through one live Kleis and one upstream: Claude
Code's Messages body on a Codex model (translated to Responses and back), each paired with the same conversation
as Codex CLI sends it (Responses, native), sent just before or after it on its own keep-alive connection."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable
from typing import Any

from bench.client import Connection, alternated, percentile
from bench.large import CLAUDE_CODE_HEADERS
from bench.translation import claude_code_body, native_body

CODEX_CLI_HEADERS = {
    "originator": "codex_exec",
    "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)",
    "accept": "text/event-stream",
}


def requests(turns: int) -> tuple[tuple[str, dict[str, str], bytes], tuple[str, dict[str, str], bytes]]:
    """(path, headers, body) of the translated request and of the native one: one conversation of `turns` tool
    round trips on gpt-5.4."""
    body = claude_code_body(turns)
    translated = ("/v1/messages", {**CLAUDE_CODE_HEADERS, "anthropic-version": "2023-06-01"}, json.dumps(body).encode())
    native = ("/v1/responses", CODEX_CLI_HEADERS, json.dumps(native_body(body)).encode())
    return translated, native


async def first_byte(connection: Connection, path: str, headers: dict[str, str], body: bytes) -> float:
    """Milliseconds from sending the request to the first chunk of its streamed answer (read to its end)."""
    first: list[float] = []

    def on_chunk(_: bytes) -> None:
        if not first:
            first.append(time.perf_counter())

    started = time.perf_counter()
    status, _, content = await connection.request("POST", path, {"content-type": "application/json", **headers}, body, on_chunk=on_chunk)
    if status != 200 or not first:
        raise RuntimeError(f"{path} answered {status} without a stream: {content[:300]!r}")
    return (first[0] - started) * 1000


async def paired(url: str, auth: dict[str, str], count: int, turns: int, warmup: int = 5) -> list[tuple[float, float]]:
    """`count` pairs (translated, native) of first-byte times, the order swapped every pair."""
    targets = requests(turns)
    connections = [await Connection(url).open() for _ in targets]

    def timed(which: int) -> Awaitable[float]:
        path, headers, body = targets[which]
        return first_byte(connections[which], path, {**auth, **headers}, body)

    try:
        return await alternated(lambda: timed(0), lambda: timed(1), count, warmup)
    finally:
        for connection in connections:
            await connection.close()


def measure(url: str, auth: dict[str, str], count: int, turns: int = 100) -> dict[str, Any]:
    """The median of the differences (translated − native) and their interquartile range, with each side's p50."""
    pairs = asyncio.run(paired(url, auth, count, turns))
    diffs = [translated - native for translated, native in pairs]
    return {
        "kb": round(len(requests(turns)[0][2]) / 1024),
        "pairs": len(pairs),
        "translated_p50_ms": percentile([p[0] for p in pairs], 50),
        "native_p50_ms": percentile([p[1] for p in pairs], 50),
        "added_ms": statistics.median(diffs),
        "added_iqr_ms": [percentile(diffs, 25), percentile(diffs, 75)],
    }
