"""The benchmark measurements: latency, throughput, streaming delay, concurrent streams, refresh burst."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.client import Connection, EventClock, body_of, percentile

PATH = "/v1/messages"
TOOL = [{"name": "read_file", "description": "read a file", "input_schema": {"type": "object"}}]


async def latency(url: str, headers: dict[str, str], count: int, warmup: int = 30) -> dict[str, float]:
    """Sequential 1 KB JSON requests on one keep-alive connection: p50 / p99 in milliseconds."""
    connection = await Connection(url).open()
    body = body_of(1024)
    timings = []
    try:
        for index in range(warmup + count):
            started = time.perf_counter()
            status, _, _ = await connection.request("POST", PATH, {"content-type": "application/json", **headers}, body)
            elapsed = time.perf_counter() - started
            if status != 200:
                raise RuntimeError(f"{url} answered {status}")
            if index >= warmup:
                timings.append(elapsed * 1000)
    finally:
        await connection.close()
    return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99), "n": len(timings), "samples": timings}


async def throughput(urls: list[str], headers: dict[str, str], concurrency: int, seconds: float) -> dict[str, float]:
    """Requests per second with `concurrency` keep-alive connections (spread over `urls`) for `seconds`."""
    body = body_of(1024)
    done = 0
    errors = 0
    deadline = 0.0

    async def worker(index: int) -> None:
        nonlocal done, errors
        connection = await Connection(urls[index % len(urls)]).open()
        try:
            while time.perf_counter() < deadline:
                status, _, _ = await connection.request("POST", PATH, {"content-type": "application/json", **headers}, body)
                if status == 200:
                    done += 1
                else:
                    errors += 1
        finally:
            await connection.close()

    warm = [await Connection(url).open() for url in urls]
    for connection in warm:
        await connection.request("POST", PATH, {"content-type": "application/json", **headers}, body)
        await connection.close()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"rps": done / elapsed, "errors": errors, "requests": done}


async def streaming(url: str, headers: dict[str, str], events: int, interval: float, with_tool: bool = True) -> dict[str, Any]:
    """One stream of `events` events `interval` apart: per-event delay behind the upstream, first-byte delay."""
    extra = {"stream": True, "events": events, "interval": interval, **({"tools": TOOL} if with_tool else {})}
    body = body_of(1024, **extra)
    clock = EventClock()
    connection = await Connection(url).open()
    first_byte: list[float] = []

    def on_chunk(chunk: bytes) -> None:
        if not first_byte:
            first_byte.append(time.perf_counter())
        clock(chunk)

    try:
        started = time.perf_counter()
        status, _, _ = await connection.request("POST", PATH, {"content-type": "application/json", **headers}, body, on_chunk)
    finally:
        await connection.close()
    lags = [lag * 1000 for lag in clock.lags]
    return {
        "status": status,
        "events": len(lags),
        "p50_ms": percentile(lags, 50),
        "p99_ms": percentile(lags, 99),
        "max_ms": max(lags) if lags else float("nan"),
        "first_byte_ms": (first_byte[0] - started) * 1000 if first_byte else float("nan"),
        "tool_renamed_upstream": b'"upstream_saw_tool":"mcp_Read_file"' in clock.text.replace(b" ", b""),
        "tool_name_restored": b'"name":"read_file"' in clock.text.replace(b" ", b""),
    }


async def concurrent_streams(url: str, headers: dict[str, str], streams: int, events: int, interval: float) -> dict[str, Any]:
    """`streams` slow streams open at once: how many fail or end short."""
    body = body_of(512, stream=True, events=events, interval=interval)
    errors = 0
    short = 0

    async def one() -> None:
        nonlocal errors, short
        clock = EventClock()
        try:
            connection = await Connection(url).open()
            try:
                status, _, _ = await connection.request("POST", PATH, {"content-type": "application/json", **headers}, body, clock)
            finally:
                await connection.close()
            if status != 200:
                errors += 1
            elif len(clock.lags) != events:
                short += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(streams)))
    return {"streams": streams, "errors": errors, "short": short, "seconds": time.perf_counter() - started}


async def burst(url: str, headers: dict[str, str], count: int, body: bytes | None = None) -> dict[str, Any]:
    """`count` requests at once (new connections), e.g. on an expired token: statuses and wall time. `body`: a
    512-byte request unless given."""
    body = body if body is not None else body_of(512)

    async def one() -> int:
        connection = await Connection(url).open()
        try:
            status, _, _ = await connection.request("POST", PATH, {"content-type": "application/json", **headers}, body)
            return status
        finally:
            await connection.close()

    started = time.perf_counter()
    statuses = await asyncio.gather(*(one() for _ in range(count)))
    return {"ok": sum(1 for s in statuses if s == 200), "count": count, "seconds": time.perf_counter() - started}


async def upstream_stats(url: str) -> dict[str, int]:
    connection = await Connection(url).open()
    try:
        _, _, content = await connection.request("GET", "/stats", {})
    finally:
        await connection.close()
    return json.loads(content)
