"""The account pool's order for one request (providers.pool.rank): headroom before saving accounts, routing modes,
the conversation's own account, accounts at their in-flight cap last."""

from __future__ import annotations

from providers.pool import PoolPolicy, RoutingMode, candidates, rank
from providers.quota import QuotaReading, QuotaWindow
from tests.support.accounts import view

NOW = 1_800_000_000.0
PRIMARY = PoolPolicy(RoutingMode.PRIMARY, 0.95)
HEADROOM = PoolPolicy(RoutingMode.HEADROOM, 0.95)


def five_hour(used: float, resets_in: float = 3600, status: str = "") -> QuotaReading:
    return QuotaReading((QuotaWindow("5h", used, NOW + resets_in, status, NOW),), NOW)


def order(accounts, policy, readings, **kw) -> list[int]:
    return [a.id for a in rank(candidates(accounts, "claude", NOW), policy, readings.get, NOW, **kw)]


ACCOUNTS = [view(1, primary=True, created=1), view(2, created=2), view(3, created=3)]


def test_primary_mode_keeps_the_primary_until_it_is_saving() -> None:
    assert order(ACCOUNTS, PRIMARY, {}) == [1, 3, 2]  # no readings: the primary, then the newest
    assert order(ACCOUNTS, PRIMARY, {1: five_hour(0.94)}) == [1, 3, 2]
    assert order(ACCOUNTS, PRIMARY, {1: five_hour(0.97)}) == [3, 2, 1]  # saving: used last (it may have a few left)
    assert order(ACCOUNTS, PRIMARY, {1: five_hour(0.5, status="rejected")}) == [3, 2, 1]
    assert order(ACCOUNTS, PRIMARY, {1: five_hour(0.99, resets_in=-5)}) == [1, 3, 2]  # a stale reading holds nothing back


def test_when_every_account_is_saving_the_soonest_reset_goes_first() -> None:
    readings = {1: five_hour(0.99, resets_in=7200), 2: five_hour(0.96, resets_in=600), 3: five_hour(1.0, resets_in=3600)}
    assert order(ACCOUNTS, PRIMARY, readings) == [2, 3, 1]


def test_headroom_mode_prefers_the_most_quota_left_and_the_primary_wins_ties() -> None:
    readings = {1: five_hour(0.6), 2: five_hour(0.2), 3: five_hour(0.4)}
    assert order(ACCOUNTS, HEADROOM, readings) == [2, 3, 1]
    assert order(ACCOUNTS, HEADROOM, {1: five_hour(0.3), 2: five_hour(0.3), 3: five_hour(0.3)}) == [1, 3, 2]
    assert order(ACCOUNTS, HEADROOM, {1: five_hour(0.1), 2: five_hour(0.97)}) == [3, 1, 2]  # unknown: all left


def test_the_conversations_account_leads_and_busy_accounts_go_last() -> None:
    assert order(ACCOUNTS, PRIMARY, {}, preferred=2) == [2, 1, 3]
    assert order(ACCOUNTS, HEADROOM, {1: five_hour(0.5), 2: five_hour(0.9), 3: five_hour(0.1)}, preferred=2) == [2, 3, 1]
    assert order(ACCOUNTS, PRIMARY, {}, busy={1}) == [3, 2, 1]
    assert order(ACCOUNTS, PRIMARY, {}, preferred=1, busy={1}) == [3, 2, 1]  # at its cap: another serves meanwhile
