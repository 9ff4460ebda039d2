"""Which provider serves a model for each client protocol, natively or translated, and why (providers.serving): the
one choice routing, /v1/models and doctor share."""

from __future__ import annotations

import time

import pytest

from core.protocol import Protocol
from providers.claude import ClaudeProvider
from providers.codex import CodexProvider
from providers.copilot import CopilotProvider
from providers.serving import Tables, choose, served
from providers.translated import endpoint_translations, translations
from tests.fakes.copilot import model_item
from tests.support.accounts import view

COPILOT_LISTS = [  # Copilot's own model list: which endpoints each model has
    model_item("gpt-4.1", ["/chat/completions"]),
    model_item("gpt-5.1-codex", ["/responses"]),
    model_item("claude-sonnet-4.5", ["/chat/completions", "/v1/messages"], vendor="Anthropic"),
]


def tables(config, accounts: tuple[str, ...], translation: bool = True) -> Tables:
    copilot = CopilotProvider(config)
    copilot._models[1] = (time.time() + 3600, COPILOT_LISTS)  # as the catalog refresher leaves it
    providers = {"claude": ClaudeProvider(config), "codex": CodexProvider(config), "copilot": copilot}
    listed = {item["id"] for item in COPILOT_LISTS}

    def registry(model: str, protocol: Protocol) -> str | None:  # the catalog: Copilot's list, on its chat endpoint
        return "copilot" if model in listed and protocol is Protocol.CHAT else None

    return Tables(
        providers,
        [view(n, name) for n, name in enumerate(accounts, 1)],
        registry,
        translations(providers) if translation else None,
        (),
        endpoint_translations(providers) if translation else None,
    )


ALL = ("claude", "codex", "copilot")


@pytest.mark.parametrize(
    ("model", "protocol", "accounts", "expected"),
    [
        ("claude-sonnet-4-5", Protocol.MESSAGES, ALL, ("claude", "")),
        ("claude-sonnet-4-5", Protocol.RESPONSES, ALL, ("claude", "responses→messages")),
        ("claude-sonnet-4-5", Protocol.CHAT, ALL, ("claude", "chat→messages")),  # the family's plan over Copilot's copy
        ("claude-sonnet-4.5", Protocol.CHAT, ("copilot",), ("copilot", "")),  # Copilot when it is the only one
        ("copilot/claude-sonnet-4.5", Protocol.MESSAGES, ALL, ("copilot", "")),  # or asked by prefix: /v1/messages listed
        ("copilot/gpt-4.1", Protocol.MESSAGES, ALL, ("copilot", "messages→chat")),  # chat-only on Copilot
        ("copilot/gpt-4.1", Protocol.RESPONSES, ALL, ("copilot", "responses→chat")),
        ("gpt-4.1", Protocol.MESSAGES, ALL, ("copilot", "messages→chat")),  # a bare id only Copilot lists
        ("copilot/gpt-5.1-codex", Protocol.CHAT, ALL, ("copilot", "chat→responses")),  # Responses-only on Copilot
        ("copilot/gpt-5.1-codex", Protocol.MESSAGES, ALL, ("copilot", "messages→responses")),
        ("gpt-5.4", Protocol.MESSAGES, ALL, ("codex", "messages→responses")),
        ("gpt-5.4", Protocol.RESPONSES, ALL, ("codex", "")),
    ],
)
def test_each_model_and_protocol_has_one_provider(model, protocol, accounts, expected, config) -> None:
    choice = choose(model, protocol, tables(config, accounts))
    assert choice is not None and (choice.resolution.provider, choice.translation) == expected


def test_without_translation_only_native_routes_remain(config) -> None:
    assert choose("copilot/gpt-4.1", Protocol.MESSAGES, tables(config, ALL, translation=False)).translation == ""  # Copilot's 400
    assert choose("claude-sonnet-4-5", Protocol.RESPONSES, tables(config, ALL, translation=False)) is None
    assert choose("no-such-model", Protocol.MESSAGES, tables(config, ALL)) is None


def test_served_says_which_provider_serves_each_path_and_why(config) -> None:
    assert served("claude-sonnet-4-5", tables(config, ALL)) == {
        "/v1/messages": {
            "provider": "claude",
            "model": "claude-sonnet-4-5",
            "translation": "",
            "why": "claude: its model family's plan; native",
        },
        "/v1/chat/completions": {
            "provider": "claude",
            "model": "claude-sonnet-4-5",
            "translation": "chat→messages",
            "why": "claude: its model family's plan; translated (chat→messages)",
        },
        "/v1/responses": {
            "provider": "claude",
            "model": "claude-sonnet-4-5",
            "translation": "responses→messages",
            "why": "claude: its model family's plan; translated (responses→messages)",
        },
    }
    only_copilot = served("claude-sonnet-4.5", tables(config, ("copilot",)))
    assert only_copilot["/v1/chat/completions"]["why"] == "copilot: listed by the provider's model list or models.dev; native"
