"""Compressed request bodies: decoded in bounded steps with the limit on the decoded size (measured as peak RSS).
Here the parts that need no socket; through listeners: tests/e2e/test_request_body.py."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from core.client_errors import Refusal
from engine.request_body import decoded_body

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
