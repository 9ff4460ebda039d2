"""The providers Kleis knows, by name, built from the configuration."""

from __future__ import annotations

from core.config import Config
from core.enums import ProviderName
from providers.base import Provider
from providers.claude import ClaudeProvider
from providers.codex import CodexProvider
from providers.copilot import CopilotProvider

PROVIDER_CLASSES: dict[str, type[Provider]] = {
    ProviderName.CLAUDE: ClaudeProvider,
    ProviderName.CODEX: CodexProvider,
    ProviderName.COPILOT: CopilotProvider,
}


def provider_map(config: Config) -> dict[str, Provider]:
    return {name: cls(config) for name, cls in PROVIDER_CLASSES.items()}


def all_providers() -> list[type[Provider]]:
    return list(PROVIDER_CLASSES.values())
