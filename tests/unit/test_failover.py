"""Account health and failover: cooldown rules, cap and half-open retest, transparent retry, streaming retry, reset.
Here the parts that need no socket; through listeners: tests/e2e/test_failover.py."""

from __future__ import annotations

import time

import httpx
import pytest

from engine.follower import StoreFollower
from engine.health import HealthTracker
from providers.base import Signal, classify_by_status
from providers.health import SERVER_COOLDOWN, TRANSIENT_COOLDOWN, decide


@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        (Signal("rate_limit", "429", reset_at=1000 + 600), ("cooling", 1000 + 600)),
        (Signal("rate_limit", "429", reset_at=1000 + 86400 * 3), ("cooling", 1000 + 7200)),  # capped
        (Signal("rate_limit", "429"), ("cooling", 1000 + TRANSIENT_COOLDOWN)),
        (Signal("rate_limit", "429", reset_at=999), ("cooling", 1000 + TRANSIENT_COOLDOWN)),  # a reset in the past
        (Signal("overloaded", "529"), ("cooling", 1000 + SERVER_COOLDOWN)),
        (Signal("server", "500"), ("cooling", 1000 + SERVER_COOLDOWN)),
        (Signal("rate_limit", "fast mode credits", account_wide=False), None),
        (Signal("auth", "401"), None),
        (Signal("request", "400", account_wide=False), None),
        (Signal("version", "client too old", account_wide=False), None),
    ],
)
def test_cooldown_rules(signal: Signal, expected: tuple | None) -> None:
    decision = decide(signal, now=1000, cooldown_max=7200)
    assert (decision.status, decision.cooldown_until) == expected if expected else decision is None


@pytest.mark.parametrize("status", [400, 404, 405, 413, 422, 501, 505])
def test_client_caused_answers_never_cool_the_account(status: int) -> None:
    signal = classify_by_status(status, {})
    assert not signal.account_wide and decide(signal, now=1000, cooldown_max=7200) is None


def test_half_open_probe_order_unit() -> None:
    from tests.support.accounts import view

    now = time.time()
    tracker = HealthTracker(60, StoreFollower(None))
    cooled, active = view(1, status="cooling", primary=True, cooldown=now - 1), view(2)
    order, probe = tracker.order([cooled, active], now)
    assert [a.id for a in order] == [1, 2] and probe == (1, now)
    order, second = tracker.order([cooled, active], now + 1)
    assert [a.id for a in order] == [2, 1] and second is None  # held back, still last resort
    assert [a.id for a in tracker.order([cooled], now + 1)[0]] == [1]  # a lone account keeps serving
    replacement = tracker.order([cooled, active], now + 200)[1]  # a probe that never finished stops holding it back
    assert replacement == (1, now + 200)
    tracker.probe_done(probe)  # the late first probe ends: it must not release its replacement
    assert tracker.order([cooled, active], now + 201)[1] is None
    tracker.probe_done(replacement)
    assert tracker.order([cooled, active], now + 202) == ([cooled, active], (1, now + 202))


def test_only_a_401_soon_after_a_renewal_refuses_the_account() -> None:
    from types import SimpleNamespace

    from providers.lifecycle import RENEWAL_WINDOW, TokenManager

    manager = TokenManager(None, {}, None)
    account = SimpleNamespace(id=7, token_version=3)
    now = time.time()
    manager._renewed_after_401[7] = (3, now)
    assert manager.refused_after_renewal(account, now + 5)  # the fresh replacement is refused too
    assert not manager.refused_after_renewal(account, now + 6)  # once: after the cooldown a 401 means refresh again
    manager._renewed_after_401[7] = (3, now)
    assert not manager.refused_after_renewal(account, now + RENEWAL_WINDOW + 1)  # hours later: just a stale token
    manager._renewed_after_401[7] = (2, now)
    assert not manager.refused_after_renewal(account, now + 1)  # another token version


def test_a_failovers_forced_refresh_waits_no_longer_than_a_request_would(store, config) -> None:
    import asyncio

    from addons import failover
    from engine.context import begin
    from providers.lifecycle import TokenManager
    from store.accounts import TokenSet as Tokens
    from tests.fakes.loopback_provider import LoopbackProvider
    from tests.support.accounts import account_view
    from tests.support.addons import seed

    class SlowTokenEndpoint(LoopbackProvider):
        async def refresh(self, account, http):
            await asyncio.sleep(3)  # a token endpoint that takes its time
            return Tokens("sk-new-access", "sk-new-refresh", time.time() + 3600)

    _, account_id = seed(store)
    provider = SlowTokenEndpoint(config, {}, "")

    async def scenario() -> tuple[object, float]:
        async with httpx.AsyncClient() as http:
            tokens = TokenManager(store, {"loop": provider}, http)
            tokens.request_wait = 0.3
            started = time.monotonic()
            result = await failover.resend(begin("POST", "/v1/messages"), account_view(store, account_id), tokens, http, 10, True)
            waited = time.monotonic() - started
            await asyncio.sleep(3.2)  # the refresh went on in the background and stored its answer
            return result, waited

    result, waited = asyncio.run(scenario())
    assert result is None and waited < 2  # skipped like an account whose token cannot be had, not held for the refresh
    assert account_view(store, account_id).access_token == "sk-new-access"
