"""Account health as a mitmproxy addon: cooldowns and half-open probes applied to the proxy's accounts at once,
and to the store in the background (`done` waits for the last writes)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from core.enums import AccountStatus
from engine.follower import StoreFollower
from providers.base import Signal
from providers.health import Decision, decide
from store import accounts as account_store
from store.accounts import AccountView

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 120.0  # a half-open probe not finished by then no longer holds the others back


class HealthTracker:
    def __init__(self, cooldown_max: float, follower: StoreFollower) -> None:
        self.cooldown_max = cooldown_max
        self.follower = follower
        self._writes: set[asyncio.Task[Any]] = set()
        self._probes: dict[int, float] = {}  # account id -> when its half-open probe request started

    async def done(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def order(self, candidates: list[AccountView], now: float | None = None) -> tuple[list[AccountView], tuple[int, float] | None]:
        """Half-open: after its cooldown an account gets one request to test it, not the whole burst.

        Accounts whose probe is still out go to the end of the list (still there, so a lone account keeps
        serving); if the first candidate is a cooled account nobody is testing, this request is its probe.
        Returns the order and the probe this request is, (account id, start), to hand back to `probe_done`."""
        now = time.time() if now is None else now

        def probing(account: AccountView) -> bool:
            return now - self._probes.get(account.id, -PROBE_TIMEOUT) < PROBE_TIMEOUT

        waiting = [a for a in candidates if a.status == AccountStatus.COOLING and probing(a)]
        if waiting:
            held = {a.id for a in waiting}
            candidates = [a for a in candidates if a.id not in held] + waiting
        first = candidates[0] if candidates else None
        if first is not None and first.status == AccountStatus.COOLING and not probing(first):
            self._probes[first.id] = now
            return candidates, (first.id, now)
        return candidates, None

    def probe_done(self, probe: tuple[int, float] | None) -> None:
        """A probe that outlived PROBE_TIMEOUT does not release the one that replaced it."""
        if probe is not None and self._probes.get(probe[0]) == probe[1]:
            del self._probes[probe[0]]

    def on_signal(self, account: AccountView, signal: Signal) -> Decision | None:
        if signal.account_note:
            self.note(account, signal.account_note, signal.label)
        decision = decide(signal, time.time(), self.cooldown_max)
        if decision is None:
            return None
        current = self.follower.account(account.id) or account
        if current.status in (AccountStatus.DISABLED, AccountStatus.NEEDS_REAUTH):
            return None
        if current.status == AccountStatus.COOLING and (current.cooldown_until or 0) >= (decision.cooldown_until or 0):
            return None  # already cooling at least that long
        log.warning("account %s (%s) %s: %s", account.id, account.provider, decision.status, decision.reason)
        changed = dataclasses.replace(
            current, status=decision.status, status_reason=decision.reason, cooldown_until=decision.cooldown_until
        )
        self.follower.replace_account(changed)
        self._persist(account.id, decision.status, decision.reason, decision.cooldown_until)
        return decision

    def note(self, account: AccountView, note: Mapping[str, Any], reason: str) -> None:
        """A fact about the account (not its health: it stays usable), shown at once and stored in the background."""
        current = self.follower.account(account.id) or account
        if all(current.metadata.get(name) == value for name, value in note.items()):
            return
        now = time.time()
        metadata = {**current.metadata, **note, **{f"{name}_since": now for name in note if current.metadata.get(name) != note[name]}}
        self.follower.replace_account(dataclasses.replace(current, metadata=metadata))
        log.warning("account %s (%s): %s", account.id, account.provider, reason)
        self._write(asyncio.to_thread(account_store.note_metadata, account.id, dict(note), reason))

    def on_success(self, account: AccountView) -> None:
        """A cooled account that answered again (half-open test passed) is active again."""
        current = self.follower.account(account.id) or account
        if current.status != AccountStatus.COOLING or (current.cooldown_until or 0) > time.time():
            return
        self.follower.replace_account(dataclasses.replace(current, status=AccountStatus.ACTIVE, status_reason="", cooldown_until=None))
        self._persist(account.id, AccountStatus.ACTIVE, "answered again after its cooldown", None)

    def _persist(self, account_id: int, status: AccountStatus, reason: str, until: float | None) -> None:
        self._write(asyncio.to_thread(account_store.set_status, account_id, status, reason, cooldown_until=until, kind="health"))

    def _write(self, write: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storing an account state change failed: %s", task.exception())
