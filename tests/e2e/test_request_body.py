"""Compressed request bodies: decoded in bounded steps with the limit on the decoded size (measured as peak RSS).
Here the parts that need a listener; the rest: tests/unit/test_request_body.py."""

from __future__ import annotations

import gzip
import signal
import zlib
from pathlib import Path

import brotli
import httpx
import zstandard

from engine.request_body import CHUNK
from tests.support.cli import START_LINE, run_kleis, start_serve, stop
from tests.unit.test_request_body import BODY


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_decompression_bombs_do_not_raise_the_peak_rss(tmp_path: Path) -> None:
    """256 MB of decoded zeros per request against a 4 MB limit: the serving process's peak RSS stays put."""
    data_dir = tmp_path / "data"
    key = run_kleis(data_dir, "keys", "create", "--name", "bomb").stdout.splitlines()[0]
    limit = 4 * 1024 * 1024
    process, lines = start_serve(data_dir, {"KLEIS_MAX_BODY_BYTES": str(limit)})
    decoded = 256 * 1024 * 1024
    zeros = b"0" * (16 * 1024 * 1024)
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    gzip_bomb = b"".join(gz.compress(zeros) for _ in range(decoded // len(zeros))) + gz.flush()
    bombs = {
        "br": brotli.compress(b"0" * decoded, quality=5),
        "gzip": gzip_bomb,
        "zstd": zstandard.ZstdCompressor(level=3).compress(b"0" * decoded),
    }
    try:
        url = START_LINE.match(lines[-1]).group(1)
        headers = {"x-api-key": key, "content-type": "application/json"}
        with httpx.Client(base_url=url, timeout=60) as client:
            warm = client.post("/v1/messages", content=gzip.compress(BODY), headers={**headers, "content-encoding": "gzip"})
            assert warm.status_code == 503, warm.text  # decoded and parsed: only the account is missing
            before = peak_rss_mb(process.pid)
            statuses = {}
            for encoding, bomb in bombs.items():
                answer = client.post("/v1/messages", content=bomb, headers={**headers, "content-encoding": encoding})
                statuses[encoding] = answer.status_code
            after = peak_rss_mb(process.pid)
    finally:
        code = stop(process, signal.SIGTERM)
    print(f"peak RSS before the bombs {before:.0f} MB, after {after:.0f} MB; answers {statuses}")
    assert after - before < 3 * limit / 1024 / 1024 + CHUNK / 1024 / 1024 + 16, (before, after)
    assert statuses == {"br": 415, "gzip": 413, "zstd": 413} and code == 0
