"""core.fastjson: the value Kleis reads from a body is the value the standard module reads, whichever parser ran, and
what Kleis writes reads back as the value it wrote (property tests); the checks it kept (NaN, Infinity, overflowing
numbers refused; a lone surrogate safe); deep nesting and huge bodies answered as before."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import fastjson

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),  # past 64 bits too: orjson would read those as floats
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),  # lone surrogates included: the standard module reads and writes them as escapes
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=40
)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.booleans())
def test_reading_gives_the_standard_modules_value(value, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(raw)
    except ValueError:
        return  # not UTF-8 the standard module reads either (a lone surrogate written raw)
    got = fastjson.loads(raw)
    assert got == expected and _types(got) == _types(expected)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_what_is_written_reads_back_as_the_same_value(value) -> None:
    written = fastjson.dumps(value)
    assert json.loads(written) == value and _types(json.loads(written)) == _types(value)


def _types(value):
    """The value's shape with each leaf's type, so 1 and 1.0 (equal in Python) are told apart."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("text", [b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1e999}', b'{"a": -1e400}', b'{"a": ' + b"9" * 400 + b".0}"])
def test_non_finite_numbers_are_refused(text: bytes) -> None:
    with pytest.raises(ValueError):
        fastjson.loads(text)


def test_big_integers_stay_integers_and_lone_surrogates_are_written_as_escapes() -> None:
    assert fastjson.loads(b'{"id": 123456789012345678901234567890}') == {"id": 123456789012345678901234567890}
    assert fastjson.loads(b'{"s": "\\ud800x"}') == {"s": "\ud800x"}
    assert fastjson.dumps({"s": "\ud800x", "n": 2**70}) == b'{"s":"\\ud800x","n":1180591620717411303424}'
    assert fastjson.dumps({"s": "é"}) == '{"s":"é"}'.encode()  # UTF-8, not escapes
    assert fastjson.loads(b'{"a": 1, "a": 2}') == {"a": 2}  # the last duplicate wins, as in the standard module
    assert math.isclose(fastjson.loads(b"[1e-300]")[0], 1e-300)


def test_deep_nesting_is_answered_as_the_standard_module_answers() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(deep)
    with pytest.raises(RecursionError):
        fastjson.loads(deep)


OBJECTS = st.dictionaries(st.sampled_from(["model", "messages", "tools", "input", "stream", "x", "é"]), VALUES, max_size=6)


@settings(max_examples=300, deadline=None)
@given(OBJECTS, st.booleans(), st.frozensets(st.sampled_from(["messages", "tools", "input", "x"])))
def test_an_object_read_in_part_is_the_standard_modules_value_once_whole(value, ascii_only: bool, unread) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only, indent=1 if ascii_only else None).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(raw)
    except ValueError:
        return
    members = fastjson.split(raw, unread)
    if members is None:  # only what msgspec's strict reading refuses: a lone surrogate
        assert "\\ud" in raw.decode("utf-8", "surrogatepass").lower() or b"\xed" in raw
        return
    assert set(members.read) == set(expected) - unread and set(members.unread) == set(expected) & unread
    assert all(part in raw for part in members.unread.values())  # the very bytes sent, unread
    whole = members.whole()
    assert whole == expected and list(whole) == list(expected) and _types(whole) == _types(expected)


@pytest.mark.parametrize(
    "text",
    [
        b'{"model": "m", "messages": [NaN]}',
        b'{"model": "m", "messages": ["\xff"]}',  # not UTF-8 inside a string
        b'{"model": "m", "messages": ["\\ud800"]}',  # a lone surrogate: the standard module reads it
        b'{"model": "m", "messages": [1,]}',
        b'\xef\xbb\xbf{"model": "m"}',
        b'["model"]',
        b'{"model": "m"} x',
    ],
)
def test_what_is_not_strict_json_is_not_read_in_part(text: bytes) -> None:
    assert fastjson.split(text, frozenset({"messages"})) is None


def test_an_unread_number_past_a_doubles_range_is_refused_once_read() -> None:
    members = fastjson.split(b'{"model": "m", "messages": [1e999]}', frozenset({"messages"}))
    assert members is not None and {k: bytes(v) for k, v in members.unread.items()} == {"messages": b"[1e999]"}  # JSON: forwarded as sent
    with pytest.raises(ValueError):
        members.whole()


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")),  # surrogates encoded, as allowed
            st.binary(max_size=4),  # anything, valid or not
            st.sampled_from([b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\xe2\x82\xac", b"\xc3", b"\xa9"]),
        ),
        max_size=12,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_utf8_checked_in_pieces_answers_as_the_whole_decode(parts: list[bytes], piece: int) -> None:
    content = b"".join(parts)
    try:
        content.decode("utf-8", "surrogatepass")
        whole = None
    except UnicodeDecodeError as error:
        whole = error
    if whole is None:
        fastjson.check_utf8(content, piece)  # pieces cut characters apart, and still pass
    else:
        with pytest.raises(UnicodeDecodeError) as raised:
            fastjson.check_utf8(content, piece)
        assert raised.value.start == whole.start and raised.value.reason == whole.reason
