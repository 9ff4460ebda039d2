"""Per-key token and cost budgets over calendar windows, shared by every process on one store (an addon).

The request path only reads memory: a key's total in its current window is what the store held at the last
reconcile plus what this process recorded since (`observe`, at the end of each request). A background task
reconciles every `interval` seconds: one indexed read of the budgeted keys' window totals (store.budgets, kept by
the usage writer in the transaction that stores the events), and this process's own events drop out of the local
part as soon as the writer has stored them. A request is admitted when its key is under budget when it starts;
what it spends counts when it ends (README: Budgets, for the overshoot bound).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import tzinfo
from typing import Any

from core.background import BackgroundTask, repeat, worth_logging
from core.client_errors import RETRY_WORTH_WAITING, Refusal
from core.display import fmt_duration
from core.windows import BudgetWindow, bounds
from store import budgets as budget_store
from store.budgets import Totals, WindowCache, budget_tokens
from store.keys import KeyRecord

log = logging.getLogger(__name__)

WindowKey = tuple[BudgetWindow, float]  # (kind, start)


@dataclasses.dataclass(frozen=True)
class Pending:
    """An event this process recorded that the store's totals may not hold yet."""

    seq: int
    key_id: int
    window: WindowKey
    tokens: int
    cost: float


class BudgetTracker:
    def __init__(
        self,
        keys: Callable[[], Iterable[KeyRecord]],
        committed: Callable[[], int],
        tz: tzinfo,
        interval: float = 0.5,
    ) -> None:
        self.keys = keys  # the proxy's current keys (the follower, in memory)
        self.committed = committed  # sequence number up to which the usage writer has stored every event
        self.windows = WindowCache(tz)
        self.interval = interval
        self.stored: dict[int, tuple[WindowKey, Totals]] = {}  # key id → its window and totals at the last reconcile
        self._pending: collections.deque[Pending] = collections.deque()
        self._pending_sums: dict[tuple[int, WindowKey], Totals] = {}
        self.reconciled_at = 0.0
        self.reconcile_seconds = 0.0  # how long the last reconcile's store read took
        self.failures = 0
        self._background = BackgroundTask("kleis budgets")

    # -- the request path (memory only) ----------------------------------------------------------
    def window_of(self, key: KeyRecord, at: float) -> WindowKey:
        kind = BudgetWindow(key.budget_window)
        return kind, self.windows.start(kind, at)

    def used(self, key: KeyRecord, now: float) -> Totals:
        """What `key` has spent in its current window, as far as this process knows."""
        window = self.window_of(key, now)
        total = Totals()
        stored = self.stored.get(key.id)
        if stored is not None and stored[0] == window:
            total.add(stored[1].tokens, stored[1].cost_usd, stored[1].requests)
        local = self._pending_sums.get((key.id, window))
        if local is not None:
            total.add(local.tokens, local.cost_usd, local.requests)
        return total

    def check(self, key: KeyRecord, now: float) -> None:
        """Raise a 429 Refusal when `key` has used its token or cost budget in the current window."""
        if not key.has_budget:
            return
        used = self.used(key, now)
        if key.token_budget is not None and used.tokens >= key.token_budget:
            spent = f"{used.tokens:,} of its {key.token_budget:,} tokens"
        elif key.cost_budget is not None and used.cost_usd >= key.cost_budget:
            spent = f"${used.cost_usd:,.2f} of its ${key.cost_budget:,.2f} (list prices)"
        else:
            return
        raise over_budget(key, spent, self.windows.tz, now)

    def observe(self, key: KeyRecord, row: Mapping[str, Any]) -> None:
        """Count a finished request of a budgeted key at once, until the store's totals hold it."""
        if not key.has_budget or row.get("seq") is None:
            return
        window = self.window_of(key, float(row["created_at"]))
        pending = Pending(int(row["seq"]), key.id, window, budget_tokens(row), float(row.get("cost_usd") or 0.0))
        self._pending.append(pending)
        self._pending_sums.setdefault((key.id, window), Totals()).add(pending.tokens, pending.cost)

    def use_now(self) -> list[tuple[KeyRecord, int, float]]:
        """(key, tokens, cost) for every budgeted key in its current window (for the metrics; memory only)."""
        now = time.time()
        return [(key, used.tokens, used.cost_usd) for key in list(self.keys()) if key.has_budget for used in (self.used(key, now),)]

    # -- reconciling with the store ----------------------------------------------------------------
    def wanted(self, now: float) -> dict[int, WindowKey]:
        return {key.id: self.window_of(key, now) for key in self.keys() if key.has_budget and key.revoked_at is None}

    def read_store(self, now: float) -> tuple[int, dict[int, WindowKey], dict[int, Totals]]:
        """Blocking (a thread): the writer's progress first, then the totals, so what it had stored is in them."""
        committed = self.committed()
        wanted = self.wanted(now)
        started = time.perf_counter()
        totals = budget_store.current_totals(wanted) if wanted else {}
        self.reconcile_seconds = time.perf_counter() - started
        return committed, wanted, totals

    def apply(self, committed: int, wanted: Mapping[int, WindowKey], totals: Mapping[int, Totals], now: float) -> None:
        """Take the store's totals and drop the local events they hold (on the event loop)."""
        self.stored = {key_id: (window, totals.get(key_id) or Totals()) for key_id, window in wanted.items()}
        while self._pending and self._pending[0].seq <= committed:
            done = self._pending.popleft()
            sums = self._pending_sums.get((done.key_id, done.window))
            if sums is not None:
                sums.add(-done.tokens, -done.cost, -1)
                if sums.requests <= 0:
                    del self._pending_sums[(done.key_id, done.window)]
        self.reconciled_at = now

    async def reconcile_once(self) -> None:
        now = time.time()
        committed, wanted, totals = await asyncio.to_thread(self.read_store, now)
        self.apply(committed, wanted, totals, now)

    # -- mitmproxy hooks ------------------------------------------------------------------------------
    def running(self) -> None:
        self._background.start(self._run)

    async def done(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        await repeat(self.reconcile_once, lambda: self.interval, self._reconcile_failed, self._reconciled)

    def _reconcile_failed(self, exc: Exception, failures: int) -> None:
        self.failures = failures
        if worth_logging(failures):
            log.warning("cannot read the budget totals (%s); counting this process's requests only, retrying", exc)

    def _reconciled(self) -> None:
        self.failures = 0


def over_budget(key: KeyRecord, spent: str, tz: tzinfo, now: float) -> Refusal:
    """429 until the window resets; past a minute away, `x-should-retry: false` (a retry only spins)."""
    reset = bounds(key.budget_window, now, tz)[1]
    wait = max(1, math.ceil(reset - now))
    headers = {"retry-after": str(wait)}
    if wait > RETRY_WORTH_WAITING:
        headers["x-should-retry"] = "false"
    when = datetime.datetime.fromtimestamp(reset, tz).strftime("%Y-%m-%d %H:%M %Z")
    message = (
        f"this Kleis key has used {spent} for this {key.budget_window}; the budget resets at {when} "
        f"(in {fmt_duration(wait)}; budgets are set with `kleis.py keys limit`)"
    )
    return Refusal(429, message, code="key_budget_exceeded", headers=headers)
