"""A small built-in models.dev-shaped registry: what Kleis knows when it has never reached models.dev."""

from __future__ import annotations

from typing import Any


def model(
    model_id: str,
    name: str,
    *,
    context: int,
    output: int,
    input_limit: int | None = None,
    reasoning: bool = True,
    images: bool = True,
    released: str = "2025-01-01",
    cost: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """One model in models.dev's shape (the fields its schema requires)."""
    entry: dict[str, Any] = {
        "id": model_id,
        "name": name,
        "attachment": images,
        "reasoning": reasoning,
        "tool_call": True,
        "temperature": True,
        "release_date": released,
        "last_updated": released,
        "modalities": {"input": ["text", "image"] if images else ["text"], "output": ["text"]},
        "open_weights": False,
        "limit": {"context": context, "output": output},
    }
    if input_limit is not None:
        entry["limit"]["input"] = input_limit
    if cost is not None:
        entry["cost"] = {"input": cost[0], "output": cost[1], "cache_read": cost[2], "cache_write": cost[3]}
    return entry


def provider(
    provider_id: str, name: str, npm: str, env: list[str], doc: str, models: list[dict[str, Any]], api: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": provider_id, "env": env, "npm": npm, "name": name, "doc": doc, "models": {m["id"]: m for m in models}}
    if api is not None:
        entry["api"] = api
    return entry


BUILTIN_REGISTRY: dict[str, Any] = {
    "anthropic": provider(
        "anthropic",
        "Anthropic",
        "@ai-sdk/anthropic",
        ["ANTHROPIC_API_KEY"],
        "https://docs.anthropic.com/en/docs/about-claude/models",
        [
            model("claude-opus-4-7", "Claude Opus 4.7", context=200000, output=64000, released="2026-04-16", cost=(5, 25, 0.5, 6.25)),
            model("claude-opus-4-6", "Claude Opus 4.6", context=200000, output=64000, released="2026-02-05", cost=(5, 25, 0.5, 6.25)),
            model("claude-sonnet-4-6", "Claude Sonnet 4.6", context=200000, output=64000, released="2026-02-17", cost=(3, 15, 0.3, 3.75)),
            model("claude-sonnet-4-5", "Claude Sonnet 4.5", context=200000, output=64000, released="2025-09-29", cost=(3, 15, 0.3, 3.75)),
            model("claude-opus-4-5", "Claude Opus 4.5", context=200000, output=64000, released="2025-11-24", cost=(5, 25, 0.5, 6.25)),
            model("claude-haiku-4-5", "Claude Haiku 4.5", context=200000, output=64000, released="2025-10-15", cost=(1, 5, 0.1, 1.25)),
        ],
    ),
    "openai": provider(
        "openai",
        "OpenAI",
        "@ai-sdk/openai",
        ["OPENAI_API_KEY"],
        "https://platform.openai.com/docs/models",
        [
            # GPT-6 (2026-09) and GPT-5.6 (2026-07) as Codex serves them; limits as in openai/codex models.json (5.6-sol).
            model("gpt-6-sol", "GPT-6 Sol", context=372000, input_limit=272000, output=128000, released="2026-09-03"),
            model("gpt-6-astra", "GPT-6 Astra", context=372000, input_limit=272000, output=128000, released="2026-09-03"),
            model("gpt-6-luna", "GPT-6 Luna", context=372000, input_limit=272000, output=128000, released="2026-09-03"),
            model("gpt-5.6-sol", "GPT-5.6 Sol", context=372000, input_limit=272000, output=128000, released="2026-07-09"),
            model("gpt-5.6-terra", "GPT-5.6 Terra", context=372000, input_limit=272000, output=128000, released="2026-07-09"),
            model("gpt-5.6-luna", "GPT-5.6 Luna", context=372000, input_limit=272000, output=128000, released="2026-07-09"),
            model("gpt-5.5", "GPT-5.5", context=400000, input_limit=272000, output=128000, released="2026-05-01"),
            model("gpt-5.4", "GPT-5.4", context=400000, input_limit=272000, output=128000, released="2026-03-05"),
            model("gpt-5.4-mini", "GPT-5.4 mini", context=400000, input_limit=272000, output=128000, released="2026-03-05"),
            model("gpt-5.3-codex", "GPT-5.3 Codex", context=400000, input_limit=272000, output=128000, released="2026-02-05"),
            model("gpt-5.3-codex-spark", "GPT-5.3 Codex Spark", context=128000, output=32000, released="2026-02-12", images=False),
            model("gpt-5.2-codex", "GPT-5.2 Codex", context=400000, input_limit=272000, output=128000, released="2025-12-11"),
        ],
    ),
    "github-copilot": provider(
        "github-copilot",
        "GitHub Copilot",
        "@ai-sdk/openai-compatible",
        ["GITHUB_TOKEN"],
        "https://docs.github.com/en/copilot",
        [
            model("gpt-4.1", "GPT-4.1", context=128000, output=16384, reasoning=False, released="2025-04-14"),
            model("gpt-5-mini", "GPT-5 mini", context=264000, input_limit=128000, output=64000, released="2025-08-13"),
            model("gpt-5.4", "GPT-5.4", context=400000, input_limit=272000, output=128000, released="2026-03-05"),
            model("claude-sonnet-4.5", "Claude Sonnet 4.5", context=144000, input_limit=128000, output=16000, released="2025-09-29"),
            model("claude-haiku-4.5", "Claude Haiku 4.5", context=144000, input_limit=128000, output=16000, released="2025-10-15"),
            model("gemini-2.5-pro", "Gemini 2.5 Pro", context=128000, output=64000, released="2025-06-17"),
        ],
        api="https://api.githubcopilot.com",
    ),
}
