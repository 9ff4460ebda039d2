"""Per-key limits: requests per minute and requests in flight, so one client key cannot exhaust the accounts.

Kept in this process's memory (no store query on the request's path): with several Kleis processes behind a
balancer, each one applies a key's limits to the requests it receives.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from core.client_errors import Refusal
from store.keys import KeyRecord

WINDOW = 60.0  # seconds: the rate limit counts the requests of the last minute


class KeyLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._recent: dict[int, deque[float]] = {}  # key id -> start times within the window (at most rate_limit)
        self._in_flight: dict[int, int] = {}

    def admit(self, key: KeyRecord) -> bool:
        """Count a request of `key`, or raise a 429 Refusal saying when to retry. True when it holds a slot of
        the key's concurrency limit, which `release` must give back once the request has ended."""
        if key.rate_limit is None and key.concurrency_limit is None:
            self._forget(key.id)
            return False
        now = self.clock()
        recent = self._recent.get(key.id)
        if key.rate_limit is not None:
            recent = self._recent.setdefault(key.id, deque())
            while recent and recent[0] <= now - WINDOW:
                recent.popleft()
            if len(recent) >= key.rate_limit:
                wait = recent[-key.rate_limit] + WINDOW - now  # when the window has room again
                raise self._refusal(f"this Kleis key allows {key.rate_limit} requests per minute", wait)
        elif recent is not None:
            del self._recent[key.id]  # the limit was lifted
        at_once = key.concurrency_limit
        holds = at_once is not None
        if at_once is not None:
            running = self._in_flight.get(key.id, 0)
            if running >= at_once:
                raise self._refusal(f"this Kleis key allows {at_once} requests at once and that many are running", 1.0)
            self._in_flight[key.id] = running + 1
        if recent is not None and key.rate_limit is not None:
            recent.append(now)
        return holds

    def release(self, key_id: int) -> None:
        running = self._in_flight.get(key_id, 0) - 1
        if running > 0:
            self._in_flight[key_id] = running
        else:
            self._in_flight.pop(key_id, None)

    def in_flight(self, key_id: int) -> int:
        return self._in_flight.get(key_id, 0)

    def _forget(self, key_id: int) -> None:
        self._recent.pop(key_id, None)

    @staticmethod
    def _refusal(message: str, wait: float) -> Refusal:
        seconds = max(1, math.ceil(wait))
        return Refusal(
            429,
            f"{message}; try again in {seconds} s (the key's limits are set with `kleis.py keys limit`)",
            code="key_rate_limited",
            headers={"retry-after": str(seconds)},
        )
