"""A compressed request body decoded in bounded steps: the size limit applies to the decoded bytes, as they come.

mitmproxy's `get_content()` decodes a body in one call, whatever it expands to: a 1 KB brotli body can become
gigabytes before any size check runs. Here gzip, deflate and zstd are decoded in pieces of CHUNK bytes and stop
one piece past `KLEIS_MAX_BODY_BYTES` with 413, so no more than the limit (and one piece) is ever held. Brotli is
refused with 415: the brotli binding mitmproxy 11.0.2 pins (1.1) cannot bound its output, and no agent sends it.
"""

from __future__ import annotations

import io
import zlib

import zstandard

from core.client_errors import Refusal

CHUNK = 256 * 1024
ZSTD_MAX_WINDOW = 1 << 23  # 8 MiB: what zstd's levels 1-19 use; a frame asking for more is refused
SUPPORTED = ("gzip", "deflate", "zstd")


def unsupported(encoding: str) -> Refusal:
    return Refusal(
        415,
        f"request bodies with content-encoding {encoding[:40]!r} are not accepted: send identity, gzip, deflate or zstd",
        code="unsupported_encoding",
    )


def too_large(size: int, limit: int, *, decoded: bool = True) -> Refusal:
    """413: the body (as sent, or once decoded) is over KLEIS_MAX_BODY_BYTES."""
    what = f"decodes to more than {limit} bytes (at least {size})" if decoded else f"of {size} bytes is over {limit} bytes"
    return Refusal(413, f"the request body {what}, Kleis's limit (KLEIS_MAX_BODY_BYTES)", code="request_too_large")


def undecodable(encoding: str) -> Refusal:
    return Refusal(400, f"the request body is not valid {encoding} data", code="invalid_encoding")


def decoded_body(raw: bytes | None, content_encoding: str, limit: int) -> bytes | None:
    """The body with its content-encodings undone (the last applied is undone first), never past `limit` bytes."""
    encodings = [part.strip().lower() for part in content_encoding.split(",") if part.strip()]
    encodings = [encoding for encoding in encodings if encoding != "identity"]
    if raw is None or not encodings:
        return raw
    if len(raw) > limit:
        raise too_large(len(raw), limit)  # compressed, it is already larger
    if len(encodings) > 2:
        raise unsupported(content_encoding)
    data = raw
    for encoding in reversed(encodings):
        data = decode_one(data, encoding, limit)
    return data


def decode_one(data: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        return _zlib(data, 16 + zlib.MAX_WBITS, limit, "gzip")
    if encoding == "deflate":  # RFC 9110 means zlib-wrapped; some clients send raw deflate
        try:
            return _zlib(data, zlib.MAX_WBITS, limit, "deflate")
        except Refusal as refusal:
            if refusal.status != 400:
                raise
            return _zlib(data, -zlib.MAX_WBITS, limit, "deflate")
    if encoding == "zstd":
        return _zstd(data, limit)
    raise unsupported(encoding)


def _zlib(data: bytes, wbits: int, limit: int, name: str) -> bytes:
    decoder = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    try:
        while pending and not decoder.eof:
            out += decoder.decompress(pending, CHUNK)  # at most CHUNK bytes; the rest of the input waits
            if len(out) > limit:
                raise too_large(len(out), limit)
            pending = decoder.unconsumed_tail
        if not decoder.eof:
            raise undecodable(name)
    except zlib.error:
        raise undecodable(name) from None
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    out = bytearray()
    decoder = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    try:
        with decoder.stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
            while piece := reader.read(CHUNK):
                out += piece
                if len(out) > limit:
                    raise too_large(len(out), limit)
    except zstandard.ZstdError:
        raise undecodable("zstd") from None
    return bytes(out)
