"""Model → provider resolution, account candidates, path classification."""

from __future__ import annotations

import time

import pytest

from core.protocol import Protocol, error_protocol_for_path, protocol_for_path
from providers.pool import candidates, unusable_reasons
from providers.routing import FAMILY_RULES, Resolution, resolve_model, served_elsewhere
from tests.support.accounts import view

ALL = ("claude", "codex", "copilot")


@pytest.mark.parametrize(
    ("model", "protocol", "expected"),
    [
        ("claude/claude-sonnet-4-5", Protocol.MESSAGES, ("claude", "claude-sonnet-4-5", "prefix")),
        ("codex/gpt-5.4", Protocol.RESPONSES, ("codex", "gpt-5.4", "prefix")),
        ("copilot/claude-sonnet-4.5", Protocol.MESSAGES, ("copilot", "claude-sonnet-4.5", "prefix")),
        ("copilot/gpt-4.1", Protocol.CHAT, ("copilot", "gpt-4.1", "prefix")),
        ("claude-opus-4-1", Protocol.MESSAGES, ("claude", "claude-opus-4-1", "family")),
        ("Claude-Haiku-4-5", Protocol.MESSAGES, ("claude", "Claude-Haiku-4-5", "family")),
        ("gpt-5.3-codex", Protocol.RESPONSES, ("codex", "gpt-5.3-codex", "family")),
        ("gpt-5.4-mini", Protocol.RESPONSES, ("codex", "gpt-5.4-mini", "family")),
        ("codex-auto-review", Protocol.RESPONSES, ("codex", "codex-auto-review", "family")),
    ],
)
def test_resolution(model: str, protocol: Protocol, expected: tuple) -> None:
    found = resolve_model(model, protocol, available=ALL)
    assert (found.provider, found.model, found.how) == expected


def test_chat_models_fall_back_to_copilot_the_only_chat_provider() -> None:
    for model in ("gpt-5.4", "claude-sonnet-4-5", "grok-code-fast-9"):
        assert resolve_model(model, Protocol.CHAT, available=ALL) == Resolution("copilot", model, "fallback")
    assert resolve_model("gpt-5.4", Protocol.CHAT, available=("claude", "codex")) is None


def test_served_elsewhere_names_the_endpoint_that_serves_the_model() -> None:
    serving = {Protocol.MESSAGES: ["claude"], Protocol.CHAT: ["copilot"], Protocol.RESPONSES: ["codex"]}.get
    assert served_elsewhere("gpt-5.4", Protocol.CHAT, serving) == "/v1/responses (codex)"
    assert served_elsewhere("claude-sonnet-4-5", Protocol.CHAT, serving) == "/v1/messages (claude)"
    assert served_elsewhere("grok-code-fast-9", Protocol.MESSAGES, serving) is None  # the chat catch-all is no claim


@pytest.mark.parametrize(
    ("model", "protocol"),
    [
        ("gpt-5.4", Protocol.CHAT),  # Codex serves Responses only; Copilot (the chat catch-all) not available here
        ("claude-sonnet-4-5", Protocol.CHAT),
        ("mystery-model", Protocol.MESSAGES),
        ("claude/x", Protocol.MESSAGES),  # prefix names a provider that is not available here
    ],
)
def test_unresolved(model: str, protocol: Protocol) -> None:
    available = ("claude", "codex") if not model.startswith("claude/") else ("codex",)
    assert resolve_model(model, protocol, available=available) is None


def test_registry_comes_before_family_rules_and_prefix_before_registry() -> None:
    registry = {"claude-sonnet-4.5": "copilot"}.get
    found = resolve_model("claude-sonnet-4.5", Protocol.MESSAGES, available=ALL, registry=lambda m, p: registry(m))
    assert (found.provider, found.how) == ("copilot", "registry")
    prefixed = resolve_model("claude/claude-sonnet-4.5", Protocol.MESSAGES, available=ALL, registry=lambda m, p: registry(m))
    assert (prefixed.provider, prefixed.how) == ("claude", "prefix")


def test_every_family_rule_is_exercised() -> None:
    samples = {
        "claude-*": "claude-x",
        "gpt-*codex*": "gpt-5-codex",
        "gpt-5*": "gpt-5.9",
        "gpt-6*": "gpt-6-sol",
        "codex-*": "codex-mini",
        "*": "grok-code-fast-9",
    }
    assert set(samples) == {rule.pattern for rule in FAMILY_RULES}
    for rule in FAMILY_RULES:
        for protocol in rule.protocols:
            assert resolve_model(samples[rule.pattern], protocol, available=ALL).provider == rule.provider


def test_candidates_primary_first_then_newest_and_skip_unusable() -> None:
    now = time.time()
    accounts = [
        view(1, created=1),
        view(2, created=3),
        view(3, primary=True, created=2),
        view(4, status="needs_reauth", created=9),
        view(5, status="disabled", created=9),
        view(6, status="cooling", cooldown=now + 60, created=9),
        view(7, status="cooling", cooldown=now - 1, created=0),
        view(8, provider="codex", primary=True),
    ]
    assert [a.id for a in candidates(accounts, "claude", now)] == [3, 2, 1, 7]
    reasons = unusable_reasons(accounts, "claude", now)
    assert any("account 4 needs a new login" in r for r in reasons)
    assert any("account 6 cooling until" in r for r in reasons)
    assert any("account 5 disabled" in r for r in reasons)


def test_paths_choose_protocols_and_error_shapes() -> None:
    assert protocol_for_path("/v1/messages") is Protocol.MESSAGES
    assert protocol_for_path("/v1/messages/count_tokens?beta=true") is Protocol.MESSAGES
    assert protocol_for_path("/v1/chat/completions/") is Protocol.CHAT
    assert protocol_for_path("/v1/responses") is Protocol.RESPONSES
    assert protocol_for_path("/v1/embeddings") is None
    assert error_protocol_for_path("/v1/messages/batches") is Protocol.MESSAGES
    assert error_protocol_for_path("/v1/whatever") is Protocol.CHAT
