"""Which accounts of a provider serve a request, in the order to try them, and why the others do not.

`candidates` keeps the usable accounts, the primary first; `rank` orders them for one request by the quota each
has left (providers.quota), the routing mode, the conversation's own account and the accounts that are busy.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from core.account_state import explain
from core.enums import AccountStatus
from providers.quota import DEFAULT_THRESHOLD, QuotaReading
from store.accounts import AccountView


class AccountSource(Protocol):
    """Where the proxy's current accounts are read from (engine.follower.StoreFollower, in memory)."""

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


class RoutingMode(enum.StrEnum):
    PRIMARY = "primary"  # the primary serves until it is saving or cooling (then the next account, in order)
    HEADROOM = "headroom"  # new conversations go to the account with the most quota left


@dataclasses.dataclass(frozen=True)
class PoolPolicy:
    mode: RoutingMode = RoutingMode.PRIMARY
    threshold: float = DEFAULT_THRESHOLD  # a window used this much (or rejected) makes the account *saving*


def rank(
    accounts: list[AccountView],
    policy: PoolPolicy,
    quota: Callable[[int], QuotaReading | None],
    now: float,
    *,
    preferred: int | None = None,
    busy: Collection[int] = (),
) -> list[AccountView]:
    """`accounts` (from `candidates`) in the order to try for one request.

    Accounts with headroom come first — in `candidates` order, or by the most quota left in headroom mode (a stable
    sort: the primary wins ties) — then saving accounts, the one whose window resets soonest first (they may still
    have a few requests left). The conversation's account (`preferred`) leads while it has headroom; accounts at
    their concurrency cap (`busy`) go last.
    """

    def reading(account: AccountView) -> QuotaReading | None:
        return quota(account.id)

    def saving(account: AccountView) -> bool:
        found = reading(account)
        return found is not None and found.saving(policy.threshold, now)

    roomy = [a for a in accounts if not saving(a)]
    held = sorted((a for a in accounts if saving(a)), key=lambda a: _reset_of(reading(a), policy.threshold, now))
    if policy.mode is RoutingMode.HEADROOM:
        roomy.sort(key=lambda a: -_headroom_of(reading(a), now))
    if preferred is not None:
        roomy.sort(key=lambda a: a.id != preferred)
    order = roomy + held
    if busy:
        order.sort(key=lambda a: a.id in busy)
    return order


def _headroom_of(reading: QuotaReading | None, now: float) -> float:
    return 1.0 if reading is None else reading.headroom(now)


def _reset_of(reading: QuotaReading | None, threshold: float, now: float) -> float:
    return float("inf") if reading is None else reading.soonest_reset(threshold, now)
