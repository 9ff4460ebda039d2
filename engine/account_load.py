"""Requests in flight per account, and KLEIS_ACCOUNT_MAX_INFLIGHT: past it a request goes to another account of the
provider, or waits briefly for a slot, instead of a herd of agents stampeding one subscription."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class AccountLoad:
    def __init__(self, max_in_flight: int | None = None) -> None:
        self.max_in_flight = max_in_flight  # None: no cap
        self._running: dict[int, int] = {}
        self._freed = asyncio.Event()

    def in_flight(self, account_id: int) -> int:
        return self._running.get(account_id, 0)

    def full(self, account_id: int) -> bool:
        return self.max_in_flight is not None and self.in_flight(account_id) >= self.max_in_flight

    def busy(self, account_ids: Iterable[int]) -> set[int]:
        """The accounts at their cap (empty when there is no cap)."""
        return {i for i in account_ids if self.full(i)} if self.max_in_flight is not None else set()

    def take(self, account_id: int) -> None:
        self._running[account_id] = self.in_flight(account_id) + 1

    def give_back(self, account_id: int) -> None:
        running = self.in_flight(account_id) - 1
        if running > 0:
            self._running[account_id] = running
        else:
            self._running.pop(account_id, None)
        self._freed.set()  # wake the requests waiting for a slot; each checks again

    async def wait_for_slot(self, account_ids: list[int], timeout: float) -> bool:
        """Wait until one of `account_ids` is below its cap; False when `timeout` passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while all(self.full(i) for i in account_ids):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), remaining)
            except TimeoutError:
                return False
        return True
