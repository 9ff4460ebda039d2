"""Which accounts of a provider serve a request, in the order to try them, and why the others do not."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from core.account_state import explain
from core.enums import AccountStatus
from store.accounts import AccountView


class AccountSource(Protocol):
    """Where the proxy's current accounts are read from (addons.follower.StoreFollower, in memory)."""

    @property
    def accounts(self) -> list[AccountView]: ...


def candidates(accounts: Iterable[AccountView], provider: str, now: float | None = None) -> list[AccountView]:
    """Usable accounts of `provider` in the order to try: the primary, then the most recently added."""
    now = time.time() if now is None else now
    usable = [a for a in accounts if a.provider == provider and a.usable(now)]
    usable.sort(key=lambda a: (not a.is_primary, -a.created_at, -a.id))
    return usable


def unusable_reasons(accounts: Iterable[AccountView], provider: str, now: float | None = None) -> list[str]:
    """Why each account of `provider` is skipped, for the 503 message."""
    now = time.time() if now is None else now
    return [f"account {a.id} {explain(a, now).why}" for a in accounts if a.provider == provider and not a.usable(now)]


def soonest_back(accounts: Iterable[AccountView], provider: str, now: float | None = None) -> float | None:
    """Seconds until the first cooling account of `provider` may serve again; None when none is cooling."""
    now = time.time() if now is None else now
    ends = [a.cooldown_until for a in accounts if a.provider == provider and a.status == AccountStatus.COOLING and a.cooldown_until]
    return min(ends) - now if ends else None
