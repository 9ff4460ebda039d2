"""Per-key limits: the limiter's arithmetic, then the real proxy refusing over-limit requests in the caller's shape.
Here the parts that need no socket; through listeners: tests/e2e/test_key_limits.py."""

from __future__ import annotations

import pytest

from core.client_errors import Refusal
from engine.key_limits import WINDOW, KeyLimiter
from store import keys
from store.keys import KeyRecord
from store.models import ApiKey


def record(rate: int | None = None, concurrency: int | None = None, key_id: int = 1) -> KeyRecord:
    return KeyRecord(key_id, "kl_abcdefgh", "k", "0" * 64, (), (), None, None, rate_limit=rate, concurrency_limit=concurrency)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the limiter ------------------------------------------------------------------------------------


def test_rate_limit_counts_a_sliding_minute_and_says_when_to_retry() -> None:
    clock = Clock()
    limiter = KeyLimiter(clock)
    key = record(rate=3)
    for _step in range(3):
        assert limiter.admit(key) is False  # no concurrency slot to give back
        clock.now += 10
    with pytest.raises(Refusal) as refused:
        limiter.admit(key)
    assert refused.value.status == 429 and refused.value.code == "key_rate_limited"
    assert refused.value.headers["retry-after"] == "30"  # the first request leaves the window at 1000 + 60
    assert "3 requests per minute" in refused.value.message
    clock.now = 1000 + WINDOW  # the first request has left the window
    assert limiter.admit(key) is False
    with pytest.raises(Refusal):
        limiter.admit(key)


def test_refused_requests_do_not_use_up_the_window() -> None:
    clock = Clock()
    limiter = KeyLimiter(clock)
    key = record(rate=1)
    limiter.admit(key)
    for _ in range(50):
        with pytest.raises(Refusal):
            limiter.admit(key)
    clock.now += WINDOW
    limiter.admit(key)  # a client hammering while limited is not locked out for longer


def test_concurrency_slots_are_held_until_released_and_keys_are_separate() -> None:
    limiter = KeyLimiter(Clock())
    key, other = record(concurrency=2), record(concurrency=2, key_id=2)
    assert limiter.admit(key) and limiter.admit(key)
    with pytest.raises(Refusal) as refused:
        limiter.admit(key)
    assert refused.value.headers["retry-after"] == "1" and "2 requests at once" in refused.value.message
    assert limiter.admit(other)  # another key is not affected
    limiter.release(key.id)
    assert limiter.in_flight(key.id) == 1 and limiter.admit(key)


def test_lifting_a_limit_lets_requests_through_and_releases_still_balance() -> None:
    limiter = KeyLimiter(Clock())
    limited = record(rate=1, concurrency=1)
    assert limiter.admit(limited)
    lifted = record()
    for _ in range(5):
        assert limiter.admit(lifted) is False
    limiter.release(lifted.id)  # the request admitted under the limit ends
    assert limiter.in_flight(lifted.id) == 0
    limiter.release(lifted.id)  # never below zero
    assert limiter.in_flight(lifted.id) == 0


@pytest.mark.parametrize("value", [-1, 1.5, "3", True, 10**9])
def test_bad_limits_are_refused_at_creation(store, value) -> None:
    with pytest.raises(Exception, match="rate_limit: expected a whole number"):
        keys.create_key("x", rate_limit=value)
    assert ApiKey.select().count() == 0


# -- through the proxy -----------------------------------------------------------------------------
