"""Whether an account can serve, and why not, in words: one rule for the proxy, the CLI, doctor and the admin."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from core.display import fmt_in, fmt_time
from core.enums import AccountStatus


class AccountFacts(Protocol):
    """What `explain` reads; a store row and the proxy's AccountView both have it."""

    @property
    def provider(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def status_reason(self) -> str: ...
    @property
    def cooldown_until(self) -> float | None: ...
    @property
    def is_primary(self) -> bool: ...
    @property
    def expires_at(self) -> float | None: ...
    @property
    def last_refresh_result(self) -> str: ...


def usable(status: str, cooldown_until: float | None, now: float) -> bool:
    """Active, or cooling with the cooldown over (the next request tests it)."""
    return status == AccountStatus.ACTIVE or (status == AccountStatus.COOLING and (cooldown_until or 0) <= now)


@dataclasses.dataclass(frozen=True)
class Explanation:
    usable: bool
    state: str  # short: active, cooling, cooldown over, needs re-auth, disabled
    why: str  # a sentence for the operator
    level: str  # ok | warn | fail (doctor's scale)


def explain(account: AccountFacts, now: float, *, available: bool = True, has_refresh: bool = True) -> Explanation:
    """The account's state in words. `available`: its provider is in this build; `has_refresh`: a refresh credential
    is stored."""
    reason = (account.status_reason or "").strip()
    status = account.status
    if not available:
        return Explanation(
            False, status, f"the {account.provider} provider is not in this build: the proxy cannot use this account", "warn"
        )
    if status == AccountStatus.DISABLED:
        return Explanation(False, "disabled", f"disabled ({reason or 'by the operator'}); enable it to use it again", "warn")
    if status == AccountStatus.NEEDS_REAUTH:
        return Explanation(False, "needs re-auth", f"needs a new login: {reason or 'its refresh credential no longer works'}", "fail")
    if status == AccountStatus.COOLING:
        until = account.cooldown_until or 0
        if until > now:
            return Explanation(
                False, "cooling", f"cooling until {fmt_time(until)} ({fmt_in(until, now)}): {reason or 'rate limited'}", "warn"
            )
        why = f"cooldown over since {fmt_time(until)}: the next request tests it again ({reason or 'rate limited'})"
        return Explanation(True, "cooldown over", why, "ok")
    text = "primary: requests go here first" if account.is_primary else "standby: used when the primary cannot serve"
    level = "ok"
    if account.expires_at is not None and account.expires_at <= now and not has_refresh:
        text += "; its token has expired and there is no refresh credential"
        level = "fail"
    result = account.last_refresh_result or ""
    if result.startswith("refresh failed"):
        text += f"; last refresh failed ({result[len('refresh failed') :].lstrip(': ')}), retried before use"
    return Explanation(True, str(status), text, level)


# Facts providers stated about an account's billing (kept in its metadata by the health tracker), in words.
BILLING_NOTES = {
    ("third_party_billing", "extra_usage"): "bills third-party traffic (clients other than Claude Code) to extra usage",
}


def billing_notes(metadata: Mapping[str, Any] | None) -> list[str]:
    """What the account's provider said about how it bills this account's traffic, with since when."""
    notes = []
    for (name, value), text in BILLING_NOTES.items():
        if (metadata or {}).get(name) == value:
            since = (metadata or {}).get(f"{name}_since")
            notes.append(text + (f" (since {fmt_time(since)})" if isinstance(since, (int, float)) else ""))
    return notes
