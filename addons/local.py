"""Endpoints Kleis answers itself: /, /healthz, /v1/models, /v1/models/{id} and /models/api.json."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mitmproxy import http

from core.client_errors import Refusal
from providers.base import Provider
from providers.pool import candidates
from providers.serving import Tables, served
from store.accounts import AccountView
from store.keys import KeyRecord

EPOCH_ISO = "1970-01-01T00:00:00Z"


def index() -> dict[str, Any]:
    """`GET /`: what this base URL is, for an agent's connectivity probe or a person with a browser."""
    return {
        "service": "kleis",
        "status": "ok",
        "endpoints": ["/v1/messages", "/v1/chat/completions", "/v1/responses", "/v1/models", "/models/api.json", "/healthz"],
    }


def healthz(
    store_healthy: bool, loaded_at: float, accounts: Iterable[AccountView], usage_waiting: int | None = None
) -> tuple[int, dict[str, Any]]:
    """Liveness plus store reachability, from the follower's last successful read, and the usage events waiting to
    be written (all from memory: no query here)."""
    age = time.time() - loaded_at
    reachable = store_healthy and age < 5
    usable: dict[str, int] = {}
    for account in accounts:
        if account.usable():
            usable[account.provider] = usable.get(account.provider, 0) + 1
    body: dict[str, Any] = {
        "status": "ok" if reachable else "degraded",
        "store": "reachable" if reachable else f"unreachable (last read {age:.0f}s ago)",
        "usable_accounts": usable,
    }
    if usage_waiting is not None:
        body["usage_waiting"] = usage_waiting  # queued usage events not yet in the store (an outage keeps them here)
    return (200 if reachable else 503), body


def model_entry(model_id: str, owned_by: str, display_name: str | None = None, created: int = 0) -> dict[str, Any]:
    """One model in a shape both the OpenAI and the Anthropic SDKs accept."""
    return {
        "id": model_id,
        "object": "model",
        "type": "model",
        "created": created,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)) if created else EPOCH_ISO,
        "owned_by": owned_by,
        "display_name": display_name or model_id,
    }


def declared_models(providers: Mapping[str, Provider]) -> list[tuple[str, str]]:
    """(provider, model id) pairs the providers declare, used until a registry lists more."""
    return [(name, model) for name, provider in providers.items() for model in provider.default_models]


def model_list(
    key: KeyRecord,
    providers: Mapping[str, Provider],
    accounts: Sequence[AccountView],
    models: Callable[[], list[tuple[str, str, str | None]]] | None = None,
    tables: Tables | None = None,
) -> dict[str, Any]:
    """Models this key may use on providers that have a usable account, as `provider/model` and bare ids; with
    `tables`, each says per client path which provider serves it there, natively or translated, and why."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    listing = models() if models is not None else [(p, m, None) for p, m in declared_models(providers)]
    for provider, model, display in listing:
        if provider not in providers or not key.allows_provider(provider) or not candidates(accounts, provider):
            continue
        for model_id in (f"{provider}/{model}", model):
            if model_id in seen or not key.allows_model(provider, model, providers.keys()):
                continue
            seen.add(model_id)
            entry = model_entry(model_id, owned_by=provider, display_name=display)
            if tables is not None:
                entry["kleis"] = {"served_on": served_for(key, model_id, tables)}
            entries.append(entry)
    return {
        "object": "list",
        "data": entries,
        "has_more": False,
        "first_id": entries[0]["id"] if entries else None,
        "last_id": entries[-1]["id"] if entries else None,
    }


def served_for(key: KeyRecord, model_id: str, tables: Tables) -> dict[str, dict[str, str]]:
    """providers.serving.served, less what this key may not use (another provider, or translation)."""
    return {
        path: how
        for path, how in served(model_id, tables).items()
        if key.allows_provider(how["provider"]) and (key.translation or not how["translation"])
    }


def one_model(listing: dict[str, Any], model_id: str) -> dict[str, Any]:
    for entry in listing["data"]:
        if entry["id"] == model_id:
            found: dict[str, Any] = entry
            return found
    raise Refusal(404, f"no model {model_id!r} for this key; GET /v1/models lists them", code="model_not_found")


def public_base(flow: http.HTTPFlow) -> str:
    """The base URL a client used to reach Kleis (for URLs Kleis hands out)."""
    host = flow.request.headers.get("host") or f"{flow.client_conn.sockname[0]}:{flow.client_conn.sockname[1]}"
    return f"http://{host}"
