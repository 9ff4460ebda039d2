"""Printing for the CLI: tables, JSON and errors, with control characters shown escaped, never sent to the terminal;
option values checked the way settings are."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, cast

from core.numbers import N, parse_number

# Characters a terminal acts on: C0 controls (escape sequences start with ESC), DEL, C1 controls (CSI is U+009B)
# and the bidirectional overrides that reorder what is shown. A client chooses model names; an upstream writes
# error messages: either could otherwise retitle the operator's window, hide lines or fake a prompt.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = {code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _CONTROLS}
_ESCAPES_KEEPING_LINES = {code: text for code, text in _ESCAPES.items() if chr(code) not in "\n\t"}


def printable(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`), for one table cell or line."""
    return text.translate(_ESCAPES)


class EscapingStream:
    """A text stream that escapes control characters except newline and tab in everything written to it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.translate(_ESCAPES_KEEPING_LINES))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_escaping() -> None:
    """Every later print and log line to stdout and stderr goes through an EscapingStream (idempotent)."""
    if not isinstance(sys.stdout, EscapingStream):
        sys.stdout = cast(TextIO, EscapingStream(sys.stdout))
    if not isinstance(sys.stderr, EscapingStream):
        sys.stderr = cast(TextIO, EscapingStream(sys.stderr))


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False, default=str)  # JSON escapes control characters itself
    sys.stdout.write("\n")


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[printable(str(h)) for h in headers]] + [[printable(str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def fail(message: str) -> None:
    print(f"kleis: error: {printable(message)}", file=sys.stderr)


def number_option(kind: type[N], what: str, **bounds: Any) -> Callable[[str], N]:
    """An argparse `type=` for a number in a range (core.numbers.parse_number), its message in argparse's words."""

    def parse(value: str) -> N:
        try:
            return parse_number(value, kind, what, **bounds)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
