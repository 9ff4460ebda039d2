"""Cost at models.dev list prices: each protocol's usage shape, reasoning and long-context prices, unknown prices."""

from __future__ import annotations

import time

import pytest

from core.protocol import Protocol
from core.sse import SSEEvent
from engine.context import begin
from engine.usage_recorder import event_from_context
from providers.catalog import Catalog
from providers.claude import ClaudeProvider
from providers.codex import CodexProvider
from providers.copilot import CopilotProvider
from providers.models_dev import ModelsDev
from providers.pricing import Prices, cost_usd, event_cost, prices_from
from providers.usage import reader_for
from store.keys import KeyRecord

SONNET = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}
SONNET_PRICES = Prices(3, 15, 0.3, 3.75)


def counted(protocol: Protocol, body: dict) -> dict:
    usage = reader_for(protocol).body(body)
    return {f: getattr(usage, f) for f in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")}


def test_messages_usage_is_priced_as_anthropic_reports_it() -> None:
    body = {"usage": {"input_tokens": 12, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 7}}
    # 12 × 3 + 100 × 0.3 + 20 × 3.75 + 7 × 15 = 246 per million
    assert event_cost(prices_from(SONNET), counted(Protocol.MESSAGES, body)) == pytest.approx(246e-6)


def test_chat_usage_moves_cached_input_to_cache_read_before_pricing() -> None:
    body = {
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 9,
            "prompt_tokens_details": {"cached_tokens": 30},
            "completion_tokens_details": {"reasoning_tokens": 4},
        }
    }
    # 20 uncached × 3 + 30 cached × 0.3 + 9 out × 15 (4 of them reasoning, at the output price) = 204 per million
    assert event_cost(prices_from(SONNET), counted(Protocol.CHAT, body)) == pytest.approx(204e-6)
    # priced as if the cached part were plain input it would be 150 + 135 = 285: the move matters
    assert cost_usd(SONNET_PRICES, input_tokens=50, output_tokens=9, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=4) == (
        pytest.approx(285e-6)
    )


def test_responses_usage_moves_cached_input_and_prices_reasoning_at_its_own_price() -> None:
    body = {
        "usage": {
            "input_tokens": 80,
            "output_tokens": 15,
            "input_tokens_details": {"cached_tokens": 64},
            "output_tokens_details": {"reasoning_tokens": 5},
        }
    }
    tokens = counted(Protocol.RESPONSES, body)
    assert (tokens["input_tokens"], tokens["cache_read_tokens"]) == (16, 64)
    # 16 × 1.25 + 64 × 0.125 + 10 × 10 + 5 × 20 (models.dev's reasoning price) = 228 per million
    gpt = prices_from({"input": 1.25, "output": 10, "cache_read": 0.125, "reasoning": 20})
    assert event_cost(gpt, tokens) == pytest.approx(228e-6)


def test_streamed_usage_is_priced_like_the_json_body() -> None:
    reader = reader_for(Protocol.MESSAGES)
    usage = '{"input_tokens":12,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}'
    start = '{"type":"message_start","message":{"usage":' + usage + "}}"
    reader.event(SSEEvent(b"", event="message_start", data=start))
    reader.event(SSEEvent(b"", event="message_delta", data='{"type":"message_delta","usage":{"output_tokens":7}}'))
    seen = reader.usage
    assert cost_usd(
        SONNET_PRICES,
        input_tokens=seen.input_tokens,
        output_tokens=seen.output_tokens,
        cache_read_tokens=seen.cache_read_tokens,
        cache_write_tokens=seen.cache_write_tokens,
        reasoning_tokens=seen.reasoning_tokens,
    ) == pytest.approx(246e-6)


def test_long_context_prices_apply_over_200k_input_tokens_and_missing_cache_prices_are_the_input_price() -> None:
    prices = prices_from({**SONNET, "context_over_200k": {"input": 6, "output": 22.5, "cache_read": 0.6, "cache_write": 7.5}})

    def priced(cache_read: int) -> float | None:
        return cost_usd(
            prices, input_tokens=150_000, output_tokens=1000, cache_read_tokens=cache_read, cache_write_tokens=0, reasoning_tokens=0
        )

    assert priced(50_000) == pytest.approx((150_000 * 3 + 50_000 * 0.3 + 1000 * 15) / 1e6)  # 200,000 input: not over
    assert priced(50_001) == pytest.approx((150_000 * 6 + 50_001 * 0.6 + 1000 * 22.5) / 1e6)
    bare = prices_from({"input": 2, "output": 8})
    assert bare is not None and (bare.cache_read, bare.cache_write) == (2, 2)


NO_PRICES = [None, {}, {"input": 3}, {"output": 15}, {"input": "3", "output": 15}, {"input": -1, "output": 15}, [3, 15]]


@pytest.mark.parametrize("cost", NO_PRICES)
def test_a_model_without_prices_costs_nothing_known_never_zero(cost) -> None:
    assert prices_from(cost) is None
    assert cost_usd(None, input_tokens=10, output_tokens=10, cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0) is None


def registry() -> dict:
    def model(model_id: str, cost: dict | None = None) -> dict:
        entry = {"id": model_id, "name": model_id, "limit": {"context": 200000, "output": 32000}}
        return {**entry, "cost": cost} if cost is not None else entry

    return {
        "anthropic": {"id": "anthropic", "models": {"claude-sonnet-4-5": model("claude-sonnet-4-5", SONNET)}},
        "openai": {"id": "openai", "models": {"gpt-5.4": model("gpt-5.4", {"input": 1.25, "output": 10, "cache_read": 0.125})}},
        "github-copilot": {
            "id": "github-copilot",
            "models": {
                "claude-sonnet-4.5": model("claude-sonnet-4.5", {"input": 0, "output": 0}),
                "gemini-2.5-pro": model("gemini-2.5-pro", {"input": 0, "output": 0}),
                "gpt-4.1": model("gpt-4.1"),
            },
        },
    }


@pytest.fixture
def catalog(config) -> Catalog:
    models_dev = ModelsDev(config.models_dev_url, config.models_ttl, config.data_dir)
    models_dev.data, models_dev.source = registry(), "fetched"
    providers = {"claude": ClaudeProvider(config), "codex": CodexProvider(config), "copilot": CopilotProvider(config)}
    return Catalog(config, providers, models_dev)


def test_the_catalog_prices_served_models_and_gives_subscription_listings_their_list_price(catalog: Catalog) -> None:
    assert catalog.prices("claude", "claude-sonnet-4-5") == SONNET_PRICES
    assert catalog.prices("codex", "gpt-5.4") == Prices(1.25, 10, 0.125, 1.25)
    # github-copilot lists its models at 0 (the subscription is not billed per token): the vendor's list price
    assert catalog.prices("copilot", "claude-sonnet-4.5") == SONNET_PRICES
    assert catalog.prices("copilot", "gemini-2.5-pro") is None  # no list price anywhere: unknown, not 0
    assert catalog.prices("copilot", "gpt-4.1") is None
    assert catalog.prices("claude", "claude-unknown-9") is None


def test_prices_change_with_the_catalog_and_old_events_keep_theirs(catalog: Catalog) -> None:
    ctx = begin("POST", "/v1/messages")
    ctx.client.key = KeyRecord(1, "kl_abcdefgh", "k", "0" * 64, (), (), None, None)
    from engine.context import UpstreamCall
    from providers.routing import Resolution
    from providers.usage import Usage, UsageReader

    ctx.route.resolution = Resolution("claude", "claude-sonnet-4-5", "registry")
    reader = UsageReader()
    reader.usage = Usage(input_tokens=1_000_000)
    ctx.upstream = UpstreamCall(usage=reader)
    before = event_from_context(ctx, time.time(), catalog.prices)
    catalog.models_dev.data["anthropic"]["models"]["claude-sonnet-4-5"]["cost"] = {**SONNET, "input": 4}
    catalog.invalidate()  # what a models.dev refresh does
    after = event_from_context(ctx, time.time(), catalog.prices)
    assert (before["cost_usd"], after["cost_usd"]) == (3.0, 4.0)
    assert event_from_context(ctx, time.time())["cost_usd"] is None  # no catalog: no price
