"""Which provider serves a model: an explicit prefix, the catalog, or the model-family rules."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Iterable, Sequence

from core.enums import ProviderName
from core.protocol import PROTOCOL_PATHS, Protocol


@dataclasses.dataclass(frozen=True)
class FamilyRule:
    """`pattern` (fnmatch, case-insensitive) on `protocols` belongs to `provider`."""

    pattern: str
    protocols: frozenset[Protocol]
    provider: str


ALL_PROTOCOLS = frozenset(Protocol)
KNOWN_PREFIXES = frozenset(ProviderName)

# Model-family rules, tried after an explicit prefix and the registry. One table, enumerated by a test.
FAMILY_RULES: tuple[FamilyRule, ...] = (
    FamilyRule("claude-*", frozenset({Protocol.MESSAGES}), ProviderName.CLAUDE),
    FamilyRule("gpt-*codex*", frozenset({Protocol.RESPONSES}), ProviderName.CODEX),
    FamilyRule("gpt-5*", frozenset({Protocol.RESPONSES}), ProviderName.CODEX),
    FamilyRule("gpt-6*", frozenset({Protocol.RESPONSES}), ProviderName.CODEX),
    FamilyRule("codex-*", frozenset({Protocol.RESPONSES}), ProviderName.CODEX),
    # Copilot is the only provider on Chat Completions: a chat model neither models.dev nor Copilot's own /models
    # lists yet (a new release) goes to Copilot, which answers in the caller's shape if it does not serve it.
    FamilyRule("*", frozenset({Protocol.CHAT}), ProviderName.COPILOT),
)


@dataclasses.dataclass(frozen=True)
class Resolution:
    provider: str
    model: str  # as sent upstream (prefix removed)
    how: str  # prefix | registry | family | fallback (the catch-all rule)


def split_prefix(model: str, names: Iterable[str]) -> tuple[str | None, str]:
    """('claude', 'claude-sonnet-4-5') from 'claude/claude-sonnet-4-5' when 'claude' is a provider name."""
    head, sep, rest = model.partition("/")
    if sep and head in names and rest:
        return head, rest
    return None, model


def resolve_model(
    model: str,
    protocol: Protocol,
    *,
    available: Iterable[str],
    registry: Callable[[str, Protocol], str | None] | None = None,
    rules: Sequence[FamilyRule] = FAMILY_RULES,
) -> Resolution | None:
    """Explicit `provider/` prefix, then the registry, then the family rules; None when nothing claims it."""
    available = set(available)
    provider, bare = split_prefix(model, KNOWN_PREFIXES | available)
    if provider is not None:
        return Resolution(provider, bare, "prefix") if provider in available else None
    if registry is not None:
        found = registry(model, protocol)
        if found in available:
            return Resolution(found, model, "registry")
    lowered = model.lower()
    for rule in rules:
        if protocol in rule.protocols and rule.provider in available and fnmatch.fnmatchcase(lowered, rule.pattern):
            return Resolution(rule.provider, model, "fallback" if rule.pattern == "*" else "family")
    return None


def served_elsewhere(
    model: str,
    protocol: Protocol,
    serving: Callable[[Protocol], Iterable[str]],
    registry: Callable[[str, Protocol], str | None] | None = None,
) -> str | None:
    """'/v1/responses (codex)' when another endpoint serves `model` for certain (a catch-all does not count)."""
    for other in Protocol:
        if other is protocol:
            continue
        found = resolve_model(model, other, available=serving(other), registry=registry)
        if found is not None and found.how != "fallback":
            return f"{PROTOCOL_PATHS[other]} ({found.provider})"
    return None


def parse_model_map(text: str) -> tuple[tuple[str, str], ...]:
    """KLEIS_MODEL_MAP as (pattern, model) pairs, in order."""
    pairs = []
    for entry in (part.strip() for part in text.split(",")):
        if "=" in entry:
            pattern, _, model = entry.partition("=")
            if pattern.strip() and model.strip():
                pairs.append((pattern.strip().lower(), model.strip()))
    return tuple(pairs)


def mapped_model(model: str, pairs: Sequence[tuple[str, str]]) -> str:
    """The model served for `model`: the first matching pair's, else `model` itself."""
    lowered = model.lower()
    return next((target for pattern, target in pairs if fnmatch.fnmatchcase(lowered, pattern)), model)
