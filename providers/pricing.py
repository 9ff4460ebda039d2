"""What a request costs at list prices: models.dev's `cost` (USD per million tokens) applied to normalised token counts.

Tokens have one meaning here (providers.usage): `input` is uncached input, `cache_read` and `cache_write` the cached
parts, `output` includes reasoning. Reasoning tokens are priced at `cost.reasoning` when models.dev gives one, else
at the output price. `cost.context_over_200k` replaces the prices of a request whose input (all three parts) is
over 200,000 tokens. A cache price models.dev leaves out is the input price. A model without prices costs None,
never 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

PER_MILLION = 1_000_000.0
LONG_CONTEXT = 200_000  # models.dev's `context_over_200k` tier


@dataclasses.dataclass(frozen=True)
class Prices:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float | None = None
    long_context: Prices | None = None  # over LONG_CONTEXT input tokens

    @property
    def free(self) -> bool:
        return not any((self.input, self.output, self.cache_read, self.cache_write, self.reasoning))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else None


def prices_from(cost: Any) -> Prices | None:
    """models.dev's `cost` object; None when it has no input or output price."""
    if not isinstance(cost, Mapping):
        return None
    price_in, price_out = _number(cost.get("input")), _number(cost.get("output"))
    if price_in is None or price_out is None:
        return None
    read, write = _number(cost.get("cache_read")), _number(cost.get("cache_write"))
    return Prices(
        input=price_in,
        output=price_out,
        cache_read=price_in if read is None else read,
        cache_write=price_in if write is None else write,
        reasoning=_number(cost.get("reasoning")),
        long_context=prices_from(cost.get("context_over_200k")),
    )


TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


@dataclasses.dataclass(frozen=True)
class TokenCounts:
    """The token fields usage_cost reads (a providers.usage.Usage has the same)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


def cost_usd(prices: Prices | None, **tokens: int) -> float | None:
    """The cost of one request's tokens in USD (rounded to a millionth of a cent), or None without prices."""
    return usage_cost(prices, TokenCounts(**tokens))


def usage_cost(prices: Prices | None, usage: Any) -> float | None:
    """The cost of a providers.usage.Usage (or TokenCounts) in USD, rounded to a millionth of a cent; None without
    prices. Attribute reads only: this runs once per request."""
    if prices is None:
        return None
    if prices.long_context is not None and usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens > LONG_CONTEXT:
        prices = prices.long_context
    output = usage.output_tokens
    reasoning = min(max(usage.reasoning_tokens, 0), output)
    total: float = (
        usage.input_tokens * prices.input
        + usage.cache_read_tokens * prices.cache_read
        + usage.cache_write_tokens * prices.cache_write
        + (output - reasoning) * prices.output
        + reasoning * (prices.output if prices.reasoning is None else prices.reasoning)
    )
    return round(total / PER_MILLION, 8)


def event_cost(prices: Prices | None, row: Mapping[str, Any]) -> float | None:
    """cost_usd for a usage event's token fields."""
    return usage_cost(prices, TokenCounts(**{field: int(row.get(field) or 0) for field in TOKEN_FIELDS}))
