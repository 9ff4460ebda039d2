"""Which provider serves a model for a client's protocol, natively or by translation, and why: the choice routing
makes for each request, and what /v1/models and `doctor` say about it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

from core.enums import AccountStatus
from core.protocol import PROTOCOL_PATHS, Protocol
from providers.base import Provider
from providers.routing import Resolution, mapped_model, resolve_model
from providers.translated import ENDPOINT_ORDER, TranslatedProvider, by_endpoint
from store.accounts import AccountView

Registry = Callable[[str, Protocol], str | None]


@dataclasses.dataclass(frozen=True)
class Choice:
    resolution: Resolution
    provider: Provider  # the provider itself, or a TranslatedProvider around it

    @property
    def translation(self) -> str:
        return self.provider.translation if isinstance(self.provider, TranslatedProvider) else ""


@dataclasses.dataclass(frozen=True)
class Tables:
    """What routing reads besides the model: the providers, the accounts, the catalog and the translations."""

    providers: Mapping[str, Provider]
    accounts: Sequence[AccountView]
    catalog: Registry | None = None
    translations: Mapping[tuple[Protocol, str], Provider] | None = None  # (client protocol, name)
    model_map: Sequence[tuple[str, str]] = ()
    endpoints: Mapping[tuple[Protocol, Protocol, str], Provider] | None = None  # (client, target, name): Copilot's

    def serving(self, protocol: Protocol) -> list[str]:
        return [name for name, provider in self.providers.items() if protocol in provider.protocols]

    def has_account(self, name: str) -> bool:
        return any(a.provider == name and a.status in (AccountStatus.ACTIVE, AccountStatus.COOLING) for a in self.accounts)


def choose(model: str, protocol: Protocol, tables: Tables) -> Choice | None:
    """The provider for `model` asked on `protocol`: an explicit prefix, the catalog or the family rules on the client's
    own protocol; by translation when nothing serves it there, or when only another provider's listing or catch-all
    does while the model's own family has an account (claude-* on the Claude plan, not Copilot's copy); and for a
    provider that serves the model on other endpoints only (Copilot), translated into one it has. None: no provider."""

    def worth_it(found: Resolution | None) -> Resolution | None:
        if found is not None and found.how == "fallback" and not tables.has_account(found.provider):
            return None  # a guess is only worth making with an account to make it on (a cooling one answers 503)
        return found

    model = mapped_model(model, tables.model_map)  # KLEIS_MODEL_MAP: e.g. Claude Code's haiku on a Codex model
    resolution = worth_it(resolve_model(model, protocol, available=tables.serving(protocol), registry=tables.catalog))
    translated: Provider | None = None
    if tables.translations and (resolution is None or resolution.how in ("registry", "fallback")):
        found, translated_to = translated_route(model, protocol, tables.providers, tables.translations, tables.catalog)
        if found is not None and (resolution is None or (found.how in ("family", "prefix") and tables.has_account(found.provider))):
            resolution, translated = worth_it(found), translated_to
    if resolution is None:
        return _on_another_endpoint(model, protocol, tables) if tables.endpoints else None
    if translated is None and tables.endpoints:
        translated = by_endpoint(tables.providers[resolution.provider], resolution.model, protocol, tables.endpoints)
    return Choice(resolution, translated or tables.providers[resolution.provider])


def _on_another_endpoint(model: str, protocol: Protocol, tables: Tables) -> Choice | None:
    """A model only a per-endpoint provider lists, and only on other protocols than the client's (Copilot's gpt-4.1
    asked on /v1/messages): translated into one it has."""
    assert tables.endpoints is not None
    for target in ENDPOINT_ORDER[protocol]:
        names = [name for name, p in tables.providers.items() if p.endpoints_by_model and target in p.protocols]
        found = resolve_model(model, target, available=names, registry=tables.catalog)
        if found is not None and found.how == "registry":
            moved = by_endpoint(tables.providers[found.provider], found.model, protocol, tables.endpoints)
            if moved is not None:
                return Choice(found, moved)
    return None


def translated_route(
    model: str,
    protocol: Protocol,
    providers: Mapping[str, Provider],
    translations: Mapping[tuple[Protocol, str], Provider],
    catalog: Registry | None,
) -> tuple[Resolution | None, Provider | None]:
    """The provider that serves `model` on another protocol, reached by translation from `protocol` (family rules and
    prefixes first, in the order providers.translated lists the targets)."""
    reachable = {name: provider for (client, name), provider in translations.items() if client is protocol}
    for target in dict.fromkeys(p for provider in reachable.values() for p in providers[provider.name].protocols):
        names = [name for name in reachable if target in providers[name].protocols]
        found = resolve_model(model, target, available=names, registry=catalog)
        if found is not None:
            return found, reachable[found.provider]
    return None, None


REASONS = {
    "prefix": "asked for by its provider prefix",
    "registry": "listed by the provider's model list or models.dev",
    "family": "its model family's plan",
    "fallback": "the catch-all for chat models",
}


def why(choice: Choice) -> str:
    """One line a person reads: which provider, how it was chosen, and whether it is translated."""
    text = f"{choice.resolution.provider}: {REASONS.get(choice.resolution.how, choice.resolution.how)}"
    return text + (f"; translated ({choice.translation})" if choice.translation else "; native")


def served(model: str, tables: Tables, protocols: Iterable[Protocol] = Protocol) -> dict[str, dict[str, str]]:
    """Per client path: which provider serves `model` there, natively or translated, and why (absent: none)."""
    out = {}
    for protocol in protocols:
        choice = choose(model, protocol, tables)
        if choice is not None:
            out[PROTOCOL_PATHS[protocol]] = {
                "provider": choice.resolution.provider,
                "model": choice.resolution.model,
                "translation": choice.translation,
                "why": why(choice),
            }
    return out
