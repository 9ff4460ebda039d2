"""Compressed request bodies: decoded in bounded steps with the limit on the decoded size (measured as peak RSS)."""

from __future__ import annotations

import gzip
import signal
import zlib
from pathlib import Path

import brotli
import httpx
import pytest
import zstandard

from core.client_errors import Refusal
from engine.request_body import CHUNK, decoded_body
from tests.support.cli import START_LINE, run_kleis, start_serve, stop

BODY = b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}'


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some clients send it
        ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)),
        ("identity", lambda data: data),
        ("", lambda data: data),
        ("gzip, zstd", lambda data: zstandard.ZstdCompressor().compress(gzip.compress(data))),
    ],
)
def test_supported_encodings_decode(encoding: str, encode) -> None:
    assert decoded_body(encode(BODY), encoding, 10_000) == BODY


@pytest.mark.parametrize(
    ("encoding", "data", "status"),
    [
        ("gzip", gzip.compress(b"0" * 5_000_000), 413),
        ("deflate", zlib.compress(b"0" * 5_000_000), 413),
        ("zstd", zstandard.ZstdCompressor().compress(b"0" * 5_000_000), 413),
        ("gzip", b"not gzip at all", 400),
        ("gzip", gzip.compress(BODY)[:-12], 400),  # cut short
        ("zstd", b"\x28\xb5\x2f\xfd garbage", 400),
        ("br", brotli.compress(BODY), 415),  # its binding cannot bound the output
        ("compress", BODY, 415),
        ("gzip, gzip, gzip", BODY, 415),
    ],
)
def test_bombs_stop_at_the_limit_and_the_rest_is_refused(encoding: str, data: bytes, status: int) -> None:
    with pytest.raises(Refusal) as refused:
        decoded_body(data, encoding, 1_000_000)
    assert refused.value.status == status


def test_a_zstd_frame_asking_for_a_huge_window_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=27, write_content_size=False)
    streaming = zstandard.ZstdCompressor(compression_params=params).compressobj()
    data = streaming.compress(b"x" * 200_000) + streaming.flush()
    assert zstandard.get_frame_parameters(data).window_size == 1 << 27  # the decoder would reserve 128 MB
    with pytest.raises(Refusal) as refused:
        decoded_body(data, "zstd", 10_000_000)
    assert refused.value.status == 400


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.e2e
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
