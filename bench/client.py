"""A minimal asyncio HTTP/1.1 keep-alive client for load generation (content-length and chunked answers)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit


class Connection:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    def _send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        assert self.writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def _head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        return status, headers

    async def _chunks(self, on_chunk: Callable[[bytes], None]) -> None:
        assert self.reader is not None
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return
            data = await self.reader.readexactly(size + 2)
            on_chunk(data[:-2])

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b"", on_chunk: Callable[[bytes], None] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send and read the whole answer; `on_chunk` sees each chunk of a chunked body as it arrives."""
        self._send(method, path, headers, body)
        await self.writer.drain()
        status, response_headers = await self._head()
        if "chunked" in response_headers.get("transfer-encoding", ""):
            pieces: list[bytes] = []

            def keep(chunk: bytes) -> None:
                pieces.append(chunk)
                if on_chunk is not None:
                    on_chunk(chunk)

            await self._chunks(keep)
            content = b"".join(pieces)
        else:
            length = int(response_headers.get("content-length", "0"))
            content = await self.reader.readexactly(length) if length else b""
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
            await self.open()
        return status, response_headers, content


def body_of(size: int = 1024, **extra: Any) -> bytes:
    """A Messages request of about `size` bytes."""
    base = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": ""}], **extra}
    padding = size - len(json.dumps(base))
    base["messages"][0]["content"] = "x" * max(0, padding)
    return json.dumps(base).encode()


async def alternated(
    first: Callable[[], Awaitable[float]], second: Callable[[], Awaitable[float]], count: int, warmup: int = 3
) -> list[tuple[float, float]]:
    """`count` pairs (first, second) of what each call measures, back to back, the order swapped every pair, after
    `warmup` pairs: a slow moment of the shared machine falls on both halves of a pair."""
    pairs = []
    for index in range(warmup + count):
        timing = [0.0, 0.0]
        for which in (0, 1) if index % 2 == 0 else (1, 0):
            timing[which] = await (first, second)[which]()
        if index >= warmup:
            pairs.append((timing[0], timing[1]))
    return pairs


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


class EventClock:
    """Splits a streamed SSE body into events and records arrival minus the upstream's `sent` stamp."""

    def __init__(self) -> None:
        self.buffer = b""
        self.lags: list[float] = []
        self.names: list[str] = []
        self.text = b""

    def __call__(self, chunk: bytes) -> None:
        now = time.time()
        self.text += chunk
        self.buffer += chunk
        while b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    try:
                        data = json.loads(line[6:])
                    except ValueError:
                        continue
                    if isinstance(data, dict) and "sent" in data:
                        self.lags.append(now - data["sent"])
