"""What the admin pages and the JSON API both do: providers, account state in words, account actions, logins."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

from core.account_state import billing_notes, explain
from core.config import Config
from core.display import account_name, fmt_in
from core.enums import AccountStatus
from core.exceptions import InvalidInput, KleisError, NotFound
from providers import quota, registry
from providers.oauth import LoginResult, LoginStart, parse_pasted
from store import accounts as account_store
from store.db import Store
from store.keys import PROVIDERS
from store.models import Account

# Metadata is never meant to hold secrets; the admin still refuses to show anything named like one.
SECRET_NAME = re.compile(r"token|secret|verifier|password|credential|cookie|(^|_)code$|(^|_)key$", re.IGNORECASE)
ACTIONS = ("primary", "refresh", "reset", "disable", "enable")


class ProviderUnavailable(NotFound):
    """A provider Kleis knows of, but this build does not include."""


@dataclasses.dataclass(frozen=True)
class ProviderInfo:
    name: str
    display_name: str
    available: bool
    terms_warning: str | None = None
    login: Any = None

    @property
    def unavailable_text(self) -> str:
        return f"The {self.display_name} provider is not available in this build of Kleis: its accounts cannot be added or used here."


def provider_info(name: str) -> ProviderInfo:
    cls = registry.PROVIDER_CLASSES.get(name)
    if cls is not None:
        return ProviderInfo(name, cls.display_name or name, True, getattr(cls, "terms_warning", None), getattr(cls, "login", None))
    if name in PROVIDERS:
        return ProviderInfo(name, name.capitalize() if name != "copilot" else "GitHub Copilot", False)
    raise NotFound(f"unknown provider {name!r} (known: {', '.join(provider_names())})")


def provider_names() -> list[str]:
    return list(PROVIDERS) + [name for name in registry.PROVIDER_CLASSES if name not in PROVIDERS]


def all_providers() -> list[ProviderInfo]:
    return [provider_info(name) for name in provider_names()]


def login_provider(name: str) -> ProviderInfo:
    """A provider whose accounts can be added here; NotFound / ProviderUnavailable (404) otherwise."""
    info = provider_info(name)
    if not info.available:
        raise ProviderUnavailable(info.unavailable_text)
    if info.login is None:
        raise ProviderUnavailable(f"the {info.display_name} provider in this build has no login")
    return info


# -- accounts --------------------------------------------------------------------------------


def safe_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (metadata or {}).items() if not SECRET_NAME.search(str(k))}


def describe(row: Account, now: float | None = None, quotas: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """An account for the pages and the API: its state and why, its quota windows, never a token."""
    now = time.time() if now is None else now
    if quotas is None:
        quotas = quota.stored_views(quota_threshold(), now)
    available = row.provider in registry.PROVIDER_CLASSES
    explanation = explain(row, now, available=available, has_refresh=row.refresh_token is not None)
    data = account_store.account_to_dict(row, now)
    data["metadata"] = safe_metadata(data.get("metadata") or {})
    data.update(
        name=account_name(row.label, row.email, row.identity),
        state=explanation.state,
        why=explanation.why,
        usable=explanation.usable,
        provider_available=available,
        quota=quotas.get(row.id),
        billing=billing_notes(row.meta),
    )
    return data


def list_accounts() -> list[dict[str, Any]]:
    now = time.time()
    order = {name: i for i, name in enumerate(provider_names())}
    rows = sorted(Account.select(), key=lambda r: (order.get(r.provider, len(order)), r.provider, not r.is_primary, r.id))
    quotas = quota.stored_views(quota_threshold(), now)
    return [describe(row, now, quotas) for row in rows]


def account_events(account_id: int, limit: int = 10) -> list[dict[str, Any]]:
    return [{"at": e.at, "kind": e.kind, "status": e.status, "reason": e.reason} for e in account_store.recent_events(account_id, limit)]


def find(ident: str | int) -> Account:
    return account_store.find_account(ident)


def act(store: Store, ident: str | int, action: str) -> str:
    """Run one account action; returns what happened, in words. KleisError on failure."""
    row = find(ident)
    name = f"{row.provider} account {row.id} ({account_name(row.label, row.email, row.identity)})"
    if action == "primary":
        account_store.set_primary(row.id)
        return f"{name} is now the primary {row.provider} account"
    if action == "refresh":
        from providers.refresh_now import refresh_now_blocking

        if row.provider not in registry.PROVIDER_CLASSES:
            raise ProviderUnavailable(f"cannot refresh {name}: the {row.provider} provider is not available in this build")
        view = refresh_now_blocking(store, row.id)
        return f"{name} refreshed; its token expires {fmt_in(view.expires_at)}"
    if action in ("reset", "enable", "disable"):
        status = AccountStatus.DISABLED if action == "disable" else AccountStatus.ACTIVE
        reason = {
            "reset": "reset by the operator (admin)",
            "enable": "enabled by the operator (admin)",
            "disable": "disabled by the operator (admin)",
        }[action]
        account_store.set_status(row.id, status, reason, kind="admin")
        return {"reset": f"{name} reset: active now", "enable": f"{name} enabled", "disable": f"{name} disabled"}[action]
    if action == "remove":
        account_store.remove_account(row.id)
        return f"{name} removed"
    raise NotFound(f"unknown account action {action!r} (choose from {', '.join(ACTIONS)}, remove)")


# -- logins ----------------------------------------------------------------------------------


def quota_threshold() -> float:
    """KLEIS_QUOTA_THRESHOLD of the running admin (the default outside one)."""
    from flask import current_app, has_app_context

    if has_app_context() and "kleis_store" in current_app.extensions:
        return app_config(current_app.extensions["kleis_store"]).quota_threshold
    return quota.DEFAULT_THRESHOLD


def app_config(store: Store) -> Config:
    """The configuration the admin app was created with (the store's, unless the app was given its own)."""
    from flask import current_app, has_app_context

    if has_app_context() and current_app.config.get("KLEIS_CONFIG") is not None:
        configured: Config = current_app.config["KLEIS_CONFIG"]
        return configured
    return store.config


def start_login(store: Store, provider: str, *, device: bool = False, label: str = "") -> tuple[ProviderInfo, LoginStart]:
    info = login_provider(provider)
    options: dict[str, Any] = {}
    if device:
        options["device"] = True
    if label:
        options["label"] = label
    return info, info.login.start_login(store, app_config(store), **options)


def complete_login(store: Store, provider: str, flow_id: str | None, answer: dict[str, Any]) -> LoginResult:
    """Finish (or, for device flows, poll once) a login. Without a flow id, the pasted answer's state names it."""
    info = login_provider(provider)
    flow_id = (flow_id or "").strip() or flow_from_answer(answer)
    if not flow_id:
        raise InvalidInput("missing field: flow_id (or a pasted code#state / callback URL that carries the login's state)")
    answer = {k: v for k, v in answer.items() if k != "flow_id"}
    result: LoginResult = info.login.complete_login(store, app_config(store), flow_id, answer)
    if result.status not in ("done", "pending"):
        raise KleisError(f"the {info.display_name} login answered an unexpected status {result.status!r}")
    return result


def flow_from_answer(answer: dict[str, Any]) -> str | None:
    for field in ("code", "callback_url", "answer"):
        value = answer.get(field)
        if isinstance(value, str) and value.strip():
            try:
                return parse_pasted(value)[1]
            except InvalidInput:
                return None
    return None
