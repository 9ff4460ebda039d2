"""The model catalog: which models Kleis serves, through which protocol, and the `kleis` models.dev entry.

Sources, per provider: the matching models.dev entry (Claude: every current `anthropic` model; Codex: the
`openai` models Codex serves; Copilot: the account's own `/models` list when fetched, else `github-copilot`),
plus the provider's declared models and `KLEIS_CUSTOM_MODELS`. The catalog answers routing (bare model id →
provider), `/v1/models`, and `/models/api.json` (models.dev merged with the `kleis` entry, whose per-model
`provider` override names the AI SDK package and base URL for the model's protocol).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from core.config import Config
from core.enums import AccountStatus, ProviderName
from core.exceptions import ConfigError
from core.protocol import Protocol
from providers.base import Provider
from providers.catalog_builtin import model as builtin_model
from providers.lifecycle import TokenManager
from providers.models_dev import ModelsDev
from providers.pool import AccountSource, candidates
from providers.pricing import Prices, prices_from

log = logging.getLogger(__name__)

SOURCES: dict[str, str] = {ProviderName.CLAUDE: "anthropic", ProviderName.CODEX: "openai", ProviderName.COPILOT: "github-copilot"}
PRIORITY = tuple(ProviderName)  # who serves a bare id several providers know
LIST_PRICE_SOURCES = ("anthropic", "openai")  # the vendors' own entries: list prices for a model a subscription lists at 0
SDK_FOR = {Protocol.MESSAGES: "@ai-sdk/anthropic", Protocol.RESPONSES: "@ai-sdk/openai", Protocol.CHAT: "@ai-sdk/openai-compatible"}
MODEL_KEYS = {
    "id",
    "name",
    "family",
    "attachment",
    "reasoning",
    "tool_call",
    "interleaved",
    "structured_output",
    "temperature",
    "knowledge",
    "release_date",
    "last_updated",
    "modalities",
    "open_weights",
    "cost",
    "limit",
    "status",
    "experimental",
    "provider",
    "reasoning_options",
}


def copilot_protocol(item: Mapping[str, Any] | None) -> Protocol:
    """Messages when Copilot lists /v1/messages for the model, Responses when it lists only that, else Chat."""
    endpoints = [str(e) for e in (item or {}).get("supported_endpoints") or []]
    if any(e.endswith("/v1/messages") for e in endpoints):
        return Protocol.MESSAGES
    if any(e.endswith("/responses") for e in endpoints) and not any(e.endswith("/chat/completions") for e in endpoints):
        return Protocol.RESPONSES
    return Protocol.CHAT


def from_copilot_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A models.dev model built from an entry of Copilot's own /models (for models models.dev lacks)."""
    capabilities = item.get("capabilities") or {}
    limits = capabilities.get("limits") or {}
    supports = capabilities.get("supports") or {}
    entry = builtin_model(
        str(item["id"]),
        str(item.get("name") or item["id"]),
        context=int(limits.get("max_context_window_tokens") or limits.get("max_prompt_tokens") or 128000),
        output=int(limits.get("max_output_tokens") or 16384),
        input_limit=int(limits["max_prompt_tokens"]) if limits.get("max_prompt_tokens") else None,
        reasoning=bool(supports.get("reasoning_effort") or supports.get("adaptive_thinking") or supports.get("max_thinking_budget")),
        images=bool(supports.get("vision")),
        released=time.strftime("%Y-%m-%d"),
    )
    entry["tool_call"] = bool(supports.get("tool_calls", True))
    return entry


class Catalog:
    def __init__(self, config: Config, providers: Mapping[str, Provider], models_dev: ModelsDev | None = None) -> None:
        self.config = config
        self.providers = dict(providers)
        self.models_dev = models_dev or ModelsDev(config.models_dev_url, config.models_ttl, config.data_dir)
        if not self.models_dev.data:
            self.models_dev.load_offline()
        self.custom = load_custom_models(config.custom_models)
        self.provider_lists: dict[str, list[dict[str, Any]]] = {}  # from Provider.list_models
        self.lists_fetched: dict[str, float] = {}  # provider -> when its own model list was last fetched
        self.follower: AccountSource | None = None  # the proxy's accounts: the kleis entry lists providers that have one
        self._served: dict[str, dict[str, tuple[dict[str, Any], Protocol]]] | None = None
        self._registry_bytes: tuple[int, bytes] | None = None  # models.dev serialised once per copy
        # whole /models/api.json answers per base URL (the Host a client sent): a few, until a source changes
        self._answers: collections.OrderedDict[tuple[int, str], bytes] = collections.OrderedDict()
        self._prices: dict[tuple[str, str], Prices | None] = {}

    # -- what Kleis serves -------------------------------------------------------------------
    def served(self) -> dict[str, dict[str, tuple[dict[str, Any], Protocol]]]:
        """provider → model id → (models.dev model, protocol), cached until a source changes."""
        if self._served is None:
            self._served = {name: self._models_of(name, provider) for name, provider in self.providers.items()}
            for full_id, entry in self.custom.items():
                name, _, model_id = full_id.partition("/")
                if name in self._served:
                    protocol = next(iter(self.providers[name].protocols)) if len(self.providers[name].protocols) == 1 else Protocol.CHAT
                    self._served[name][model_id] = ({**entry, "id": model_id}, _protocol_hint(entry, protocol))
        return self._served

    def _models_of(self, name: str, provider: Provider) -> dict[str, tuple[dict[str, Any], Protocol]]:
        registry = (self.models_dev.data.get(SOURCES.get(name, ""), {}) or {}).get("models", {})
        protocol = next(iter(provider.protocols)) if len(provider.protocols) == 1 else Protocol.CHAT
        found: dict[str, tuple[dict[str, Any], Protocol]] = {}
        if name == ProviderName.COPILOT and self.provider_lists.get(name):
            for item in self.provider_lists[name]:
                model_id = str(item["id"])
                base = registry.get(model_id) or from_copilot_item(item)
                found[model_id] = (base, copilot_protocol(item))
            return found
        if name == ProviderName.CLAUDE:
            for model_id, entry in registry.items():
                if entry.get("status") != "deprecated":
                    found[model_id] = (entry, protocol)
        declared = provider.default_models if name != ProviderName.COPILOT or not registry else tuple(registry)
        for model_id in declared:
            base = registry.get(model_id) or builtin_model(model_id, model_id, context=200000, output=32000)
            found.setdefault(model_id, (base, copilot_protocol(None) if name == ProviderName.COPILOT else protocol))
        return found

    def invalidate(self) -> None:
        self._served = None
        self._answers.clear()
        self._prices = {}

    # -- prices -------------------------------------------------------------------------------
    PRICES_KEPT = 1024  # model ids come from clients: the memo never grows without bound

    def prices(self, provider: str, model: str) -> Prices | None:
        """List prices of a served model, memoised until a source changes (a dict lookup on the request path).

        The served entry's models.dev `cost`; when it has none or lists everything at 0 (github-copilot: the
        subscription is not billed per token), the vendor's own entry of that model id (`claude-sonnet-4.5` is
        looked up as `claude-sonnet-4-5` too); else None: a price of 0 is no list price."""
        key = (provider, model)
        if key in self._prices:
            return self._prices[key]
        entry = self.served().get(provider, {}).get(model)
        found = prices_from(entry[0].get("cost")) if entry is not None else None
        if found is None or found.free:
            found = self._list_prices(model)
        if len(self._prices) >= self.PRICES_KEPT:
            self._prices = {}
        self._prices[key] = found
        return found

    def _list_prices(self, model: str) -> Prices | None:
        for source in LIST_PRICE_SOURCES:
            registry = (self.models_dev.data.get(source) or {}).get("models") or {}
            for candidate in dict.fromkeys((model, model.replace(".", "-"))):
                entry = registry.get(candidate)
                found = prices_from(entry.get("cost")) if isinstance(entry, dict) else None
                if found is not None and not found.free:
                    return found
        return None

    # -- routing and listing ----------------------------------------------------------------
    def lookup(self, model: str, protocol: Protocol) -> str | None:
        """The provider a bare model id belongs to on this protocol (registry step of routing)."""
        served = self.served()
        for name in sorted(served, key=lambda n: PRIORITY.index(n) if n in PRIORITY else len(PRIORITY)):
            entry = served[name].get(model)
            if entry is not None and protocol in self.providers[name].protocols:
                if name == ProviderName.COPILOT and protocol is Protocol.MESSAGES and entry[1] is not Protocol.MESSAGES:
                    continue
                return name
        return None

    def listing(self) -> list[tuple[str, str, str | None]]:
        rows = []
        for name in sorted(self.served(), key=lambda n: PRIORITY.index(n) if n in PRIORITY else len(PRIORITY)):
            for model_id, (entry, _) in self.served()[name].items():
                rows.append((name, model_id, entry.get("name")))
        return rows

    def offered_providers(self) -> set[str]:
        """Providers with an account that is not disabled or waiting for a new login."""
        accounts = self.follower.accounts if self.follower is not None else []
        return {a.provider for a in accounts if a.status in (AccountStatus.ACTIVE, AccountStatus.COOLING)}

    def kleis_entry(self, base: str) -> dict[str, Any]:
        models: dict[str, Any] = {}
        offered = self.offered_providers()
        for name, entries in self.served().items():
            if name not in offered:
                continue
            for model_id, (entry, protocol) in entries.items():
                full_id = f"{name}/{model_id}"
                item = {k: copy.deepcopy(v) for k, v in entry.items() if k in MODEL_KEYS}
                item["id"] = full_id
                item["provider"] = {"npm": SDK_FOR[protocol], "api": f"{base}/v1"}
                if protocol is Protocol.RESPONSES:
                    item["provider"]["shape"] = "responses"
                models[full_id] = item
        return {
            "id": "kleis",
            "env": ["KLEIS_API_KEY"],
            "npm": "@ai-sdk/openai-compatible",
            "api": f"{base}/v1",
            "name": "Kleis",
            "doc": f"{base}/v1/models",
            "models": models,
        }

    def api_json(self, base: str) -> dict[str, Any]:
        return {**self.models_dev.data, "kleis": self.kleis_entry(base)}

    def registry_bytes(self) -> bytes:
        """models.dev's registry without the kleis entry, serialised once per copy (megabytes: not per request)."""
        data = {k: v for k, v in self.models_dev.data.items() if k != "kleis"}
        if self._registry_bytes is None or self._registry_bytes[0] != id(self.models_dev.data):
            self._registry_bytes = (id(self.models_dev.data), json.dumps(data, separators=(",", ":")).encode())
        return self._registry_bytes[1]

    ANSWERS_KEPT = 8  # bases are client-chosen (Host): keep a few, never grow without bound

    def api_json_bytes(self, base: str) -> bytes:
        """/models/api.json: the cached registry with the (small) kleis entry for this base spliced in; the whole
        answer is kept per base until models.dev, the accounts or the provider lists change."""
        key = (id(self.models_dev.data), base)
        cached = self._answers.get(key)
        if cached is not None:
            self._answers.move_to_end(key)
            return cached
        registry = self.registry_bytes()
        entry = json.dumps(self.kleis_entry(base), separators=(",", ":")).encode()
        answer = (registry[:-1] + b"," if len(registry) > 2 else b"{") + b'"kleis":' + entry + b"}"
        self._answers[key] = answer
        while len(self._answers) > self.ANSWERS_KEPT:
            self._answers.popitem(last=False)
        return answer

    # -- refreshing the sources (called by engine.catalog_refresh) ---------------------------------
    async def refresh_once(self, http: httpx.AsyncClient, tokens: TokenManager) -> None:
        if self.models_dev.stale() and await self.models_dev.refresh(http):
            self.invalidate()
            await asyncio.to_thread(self.registry_bytes)  # serialise the new copy off the event loop
        await self._refresh_provider_lists(http, tokens)

    LIST_RETRY = 300.0  # a failed model list fetch is tried again after this, not after the whole TTL

    async def _refresh_provider_lists(self, http: httpx.AsyncClient, tokens: TokenManager) -> None:
        """Each provider's own model list, once per TTL per provider, as soon as it has an account (an account
        added after start is listed on the next pass, not an hour later)."""
        now = time.time()
        accounts = self.follower.accounts if self.follower is not None else []
        for name, provider in self.providers.items():
            if now - self.lists_fetched.get(name, -math.inf) < self.config.models_ttl:
                continue
            chosen = candidates(accounts, name)
            if not chosen:
                continue
            try:
                account = await tokens.fresh(chosen[0])
                items = await provider.list_models(account, http)
            except Exception as exc:
                log.warning("listing %s models failed (tried again in %d s): %s", name, self.LIST_RETRY, exc)
                self.lists_fetched[name] = now - self.config.models_ttl + self.LIST_RETRY
                continue
            self.lists_fetched[name] = now
            if items is not None:
                self.provider_lists[name] = items
                self.invalidate()


def _protocol_hint(entry: Mapping[str, Any], default: Protocol) -> Protocol:
    npm = ((entry.get("provider") or {}).get("npm")) or ""
    return {v: k for k, v in SDK_FOR.items()}.get(npm, default)


def load_custom_models(path: str) -> dict[str, dict[str, Any]]:
    """KLEIS_CUSTOM_MODELS: {"models": {"claude/<id>": {models.dev fields…}}}; missing fields get defaults."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).expanduser().read_text())
    except OSError as exc:
        raise ConfigError(f"KLEIS_CUSTOM_MODELS: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"KLEIS_CUSTOM_MODELS: {path} is not valid JSON: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(f'KLEIS_CUSTOM_MODELS: {path} must hold {{"models": {{"<provider>/<model>": {{…}}}}}}')
    result = {}
    for full_id, fields in models.items():
        provider, _, model_id = str(full_id).partition("/")
        if provider not in SOURCES or not model_id or not isinstance(fields, dict):
            raise ConfigError(f"KLEIS_CUSTOM_MODELS: {full_id!r} must be claude/…, codex/… or copilot/… with an object of fields")
        limit = fields.get("limit") or {}
        base = builtin_model(
            model_id, str(fields.get("name") or model_id), context=int(limit.get("context", 200000)), output=int(limit.get("output", 32000))
        )
        unknown = set(fields) - MODEL_KEYS
        if unknown:
            raise ConfigError(f"KLEIS_CUSTOM_MODELS: {full_id!r} has fields models.dev does not know: {', '.join(sorted(unknown))}")
        result[full_id] = {**base, **fields, "id": model_id}
    return result
