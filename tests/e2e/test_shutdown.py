"""SIGTERM/SIGINT on `kleis.py serve`: requests in flight finish within KLEIS_SHUTDOWN_GRACE, the rest end in their
protocol's shape, every one is recorded, and the process exits 0 without a traceback."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from core.config import Config
from store import keys
from store.accounts import TokenSet, upsert_account
from store.db import Store
from store.models import UsageEvent
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Hang, Recorded, Reply, Stream, sse
from tests.support.cli import START_LINE, start_serve
from tests.support.env import ADMIN_SECRET

GRACE = 4.0
# What each request asks for, by its max_tokens: how many of each, and how the fake answers.
SLOW_JSON, SHORT_STREAM, LONG_STREAM, LONG_JSON = 1, 2, 3, 4
COUNTS = {SLOW_JSON: 4, SHORT_STREAM: 4, LONG_STREAM: 3, LONG_JSON: 2}


def events(count: int) -> list[bytes]:
    start = {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "usage": {}}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": count}}
    return [sse("message_start", start), *[sse("content_block_delta", delta)] * count, sse("message_delta", end), sse("message_stop", {})]


def answer(request: Recorded) -> Reply | Stream | Hang:
    kind = request.json["max_tokens"]
    if kind == SLOW_JSON:
        time.sleep(1.5)
        return Reply(200, {"id": "m", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "ok"}], "usage": {}})
    if kind == SHORT_STREAM:
        return Stream(events(8), delay=0.25)  # about 2.5 s: inside the grace
    if kind == LONG_STREAM:
        return Stream(events(10), delay=3.0)  # 36 s: past it
    return Hang(60)


def call(url: str, key: str, kind: int, results: dict) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": kind, "messages": [{"role": "user", "content": "hi"}]}
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            if kind in (SHORT_STREAM, LONG_STREAM):
                with client.stream("POST", "/v1/messages", json={**body, "stream": True}, headers={"x-api-key": key}) as response:
                    results.setdefault(kind, []).append((response.status_code, "".join(response.iter_text())))
            else:
                response = client.post("/v1/messages", json=body, headers={"x-api-key": key})
                results.setdefault(kind, []).append((response.status_code, response.text))
    except httpx.HTTPError as exc:
        results.setdefault(kind, []).append((0, repr(exc)))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_drains_requests_in_flight_and_records_them_all(store: Store, config: Config, sig: int, tmp_path: Path) -> None:
    fake = FakeAnthropic().start()
    fake.route("POST", "/v1/messages", answer)
    upsert_account("claude", "acct", TokenSet("sk-ant-oat01-drain-access", "sk-ant-ort01-drain-refresh", time.time() + 3600), store.cipher)
    _, key = keys.create_key("drain")
    env = {
        "KLEIS_SECRET_KEY": config.secret_key,
        "KLEIS_ADMIN_SECRET": ADMIN_SECRET,
        "KLEIS_CLAUDE_API_BASE": fake.url,
        "KLEIS_SHUTDOWN_GRACE": str(GRACE),
    }
    process, lines = start_serve(config.data_dir, env)
    url = START_LINE.match(lines[-1]).group(1)
    results: dict[int, list] = {}
    threads = [threading.Thread(target=call, args=(url, key, kind, results)) for kind, n in COUNTS.items() for _ in range(n)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.time() + 20
        while len(fake.received("/v1/messages")) < sum(COUNTS.values()) and time.time() < deadline:
            time.sleep(0.02)
        assert len(fake.received("/v1/messages")) == sum(COUNTS.values())  # all in flight upstream
        signalled = time.monotonic()
        process.send_signal(sig)
        port = int(url.rsplit(":", 1)[1])
        refused_after = None
        while time.monotonic() - signalled < 2:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                refused_after = time.monotonic() - signalled
                break
            time.sleep(0.02)
        code = process.wait(GRACE + 20)
        exited_after = time.monotonic() - signalled
        for thread in threads:
            thread.join(10)
    finally:
        if process.poll() is None:
            process.kill()
        fake.stop()
    stderr = process.stderr.read()
    answered = {kind: sum(1 for status, text in found if status) for kind, found in results.items()}
    print(f"refused new connections after {refused_after}s, exited after {exited_after:.1f}s; answered {answered}")
    assert code == 0 and "Traceback" not in stderr, stderr
    assert refused_after is not None  # the listener closed at once
    assert GRACE - 0.5 < exited_after < GRACE + 10
    assert all(status == 200 and '"ok"' in text for status, text in results[SLOW_JSON])
    assert all(status == 200 and "message_stop" in text for status, text in results[SHORT_STREAM])
    for status, text in results[LONG_STREAM]:  # the stream ends with an Anthropic error event, and ends properly
        assert status == 200 and text.rstrip().endswith("}") and "event: error" in text and "shutting down" in text, text[-300:]
        assert "message_stop" not in text
    for status, text in results[LONG_JSON]:
        assert status == 503 and '"type": "error"' in text and "shutting down" in text, text
    rows = list(UsageEvent.select())
    assert len(rows) == sum(COUNTS.values())  # every request recorded, the cut ones too
    cut = [row for row in rows if row.error_type == "shutdown"]
    assert len(cut) == COUNTS[LONG_STREAM] + COUNTS[LONG_JSON] and all(row.incomplete for row in cut)
    assert sorted(row.status for row in cut) == [200] * COUNTS[LONG_STREAM] + [503] * COUNTS[LONG_JSON]
    assert all(not row.incomplete and row.status == 200 for row in rows if row.error_type != "shutdown")
