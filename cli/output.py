"""Printing for the CLI: tables, JSON and errors; option values checked the way settings are."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from core.numbers import N, parse_number


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def fail(message: str) -> None:
    print(f"kleis: error: {message}", file=sys.stderr)


def number_option(kind: type[N], what: str, **bounds: Any) -> Callable[[str], N]:
    """An argparse `type=` for a number in a range (core.numbers.parse_number), its message in argparse's words."""

    def parse(value: str) -> N:
        try:
            return parse_number(value, kind, what, **bounds)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
