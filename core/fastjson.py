"""JSON on the request path: msgspec and orjson where they give the very value the standard module gives, the
standard module where they might not. Agents resend the whole conversation every turn (0.3–2 MB late in a session);
msgspec reads it about 4× and orjson writes it about 8× faster than `json`, on mitmproxy's event loop.

Reading: msgspec reads integers of any size exactly and refuses what Kleis refuses (NaN, Infinity, numbers past a
double's range). What it refuses — those, a lone surrogate escape (which the standard module reads), text that is
not UTF-8, a BOM, nesting past its depth — is read by the standard module with Kleis's checks: it answers exactly
as it did before.
Writing: UTF-8 as orjson writes it; a value orjson cannot write (a lone surrogate, an integer past 64 bits) is
written by the standard module as ASCII escapes.

Reading in part (`split`): the top-level object's members as their bytes, so that a request whose bulk (the
conversation, the tool schemas) Kleis forwards unchanged is never built as Python objects. msgspec checks the whole
body as strict JSON on the way (NaN, trailing commas, control characters, bad escapes refused) at about 0.6 ms a
megabyte, and the UTF-8 is checked apart; what either refuses is read whole as above, for the same answer. Bytes
forwarded unread may hold a number past a double's range (`1e999`): it is JSON, and Kleis does not write it anew."""

from __future__ import annotations

import codecs
import dataclasses
import json
import math
from typing import Any

import msgspec
import orjson

_READ = msgspec.json.Decoder()


def loads(content: bytes | str | msgspec.Raw) -> Any:
    """`content` as JSON: the value `json.loads` gives, NaN/Infinity/overflowing numbers refused (ValueError)."""
    try:
        return _READ.decode(content)
    except (msgspec.DecodeError, RecursionError):
        pass  # the standard module says why (or reads what msgspec does not: a lone surrogate)
    text = content if isinstance(content, (bytes, str)) else bytes(content)
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)


_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])


@dataclasses.dataclass
class Members:
    """A JSON object read in part: `read` holds the members read, `unread` the others' bytes (views into the body,
    not copies); `order` is the members' order as sent."""

    read: dict[str, Any]
    unread: dict[str, msgspec.Raw]
    order: tuple[str, ...]

    def whole(self) -> dict[str, Any]:
        """The object as `loads` reads it (members in the order sent; the last of a repeated name wins)."""
        return {name: self.read[name] if name in self.read else loads(self.unread[name]) for name in self.order}


def split(content: bytes, unread: frozenset[str]) -> Members | None:
    """The top-level object with the members named in `unread` left as bytes; None when `content` is not strict
    JSON in UTF-8 (or not an object): the caller reads it with `loads`, which says why or reads what it can."""
    try:
        members = _MEMBERS.decode(content)
        check_utf8(content)  # msgspec passes bytes inside strings unchecked
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    read = {name: loads(raw) for name, raw in members.items() if name not in unread}
    return Members(read, {name: raw for name, raw in members.items() if name in unread}, tuple(members))


UTF8_PIECE = 64 * 1024


def check_utf8(content: bytes, piece: int = UTF8_PIECE) -> None:
    """UnicodeDecodeError unless `content` is UTF-8 (encoded surrogates allowed, as the standard module reads a
    lone surrogate escape). Checked in pieces: one string of a 1.5 MB agent body with non-ASCII text throughout
    takes 2.0 ms on this machine kind (one large allocation, widened to 2 or 4 bytes a character), its pieces
    0.75 ms; with non-ASCII text near its start only, 0.6–3.5 against 0.15 ms. A failure is checked again whole, so
    the answer is the whole decode's."""
    if content.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    view = memoryview(content)
    try:
        for start in range(0, len(content), piece):
            decoder.decode(view[start : start + piece])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        content.decode("utf-8", "surrogatepass")


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, an integer past 64 bits
        return json.dumps(value, separators=(",", ":")).encode()


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are not JSON: Python reads them, and would write them on to the upstream."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # 1e999: JSON allows the spelling, but it would go upstream as Infinity
        raise ValueError(f"the number {text[:40]} is too large")
    return number
