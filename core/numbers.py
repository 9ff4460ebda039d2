"""Numbers read from text (settings, command-line options) with the range they must fall in, and one message shape."""

from __future__ import annotations

from typing import TypeVar

N = TypeVar("N", int, float)


def parse_number(
    value: str,
    kind: type[N],
    what: str,
    *,
    above: float | None = None,
    low: float | None = None,
    high: float | None = None,
    unit: str = "",
    in_range: str | None = None,
) -> N:
    """`value` as `kind`, else ValueError("must be <what>, got …"). `above` is an open lower bound, `low` and `high`
    closed ones; `unit` follows the range in the message ("between 0 and 36500 days"), `in_range` replaces it."""
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"must be {what}, got {value!r}") from None
    if (above is not None and not number > above) or (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"must be {in_range or range_text(above, low, high) + unit}, got {value}")
    return number


def range_text(above: float | None, low: float | None, high: float | None) -> str:
    start = above if above is not None else low
    if high is not None and start is not None:
        return f"between {start:g} and {high:g}"
    if high is not None:
        return f"{high:g} or less"
    return f"greater than {above:g}" if above is not None else f"{low:g} or more"


def number_or_none(value: str | None) -> float | None:
    """A header's number (`0.97`, `300`), or None when it is absent or not a number."""
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
