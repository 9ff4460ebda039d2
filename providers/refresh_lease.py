"""One refresh attempt's hold on an account's refresh lease: take it (over from an owner that is gone), keep it
renewed while the provider call is in the air, free it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal

from core.exceptions import KleisError
from store import lease_owner, leases
from store.db import describe_store_error

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0  # a lease lasts this long unless renewed; renewed every LEASE_SECONDS / 3 during a refresh call
WAIT_STEP = 0.1


class LeaseBusy(KleisError):
    """A live process (on another host, or another attempt here) held the lease for longer than we wait."""


class LeaseHolder:
    def __init__(self, account_id: int, *, wait: float, tell: Callable[[str], None], resume: str | None = None) -> None:
        self.account_id = account_id
        self.wait = wait
        self.tell = tell  # what the attempt waits for, in words
        self.resume = resume  # the owner an earlier attempt of ours kept the lease as (its pair is not stored yet)
        self.owner = resume or lease_owner.new_owner()
        self.keep = False  # set when the lease must outlive this attempt: release() then leaves it held
        self.previous = ""  # the owner taken over from, when `take` says "interrupted"

    async def take(self, start_version: int) -> Literal["held", "interrupted", "refreshed", "missing"]:
        """ "held": the lease is ours; "interrupted": ours, taken over from an owner that stopped during its refresh
        (gone, or its lease ran out), so whether the provider spent the refresh token is unknown (`previous` names
        it); "refreshed": another process stored a newer pair meanwhile; "missing": the account is gone.
        LeaseBusy after `wait` seconds of a lease held by a live process."""
        if self.resume is not None:
            if await asyncio.to_thread(leases.take_over, self.account_id, LEASE_SECONDS, self.owner, self.resume):
                return "held"  # still ours: nobody else spent the refresh token while our pair waited to be stored
        deadline = time.time() + self.wait
        announced = False
        while not await asyncio.to_thread(leases.acquire, self.account_id, LEASE_SECONDS, self.owner):
            state = await asyncio.to_thread(leases.lease_state, self.account_id)
            if state is None:
                return "missing"
            if state.token_version > start_version:
                return "refreshed"
            if state.owner is None:
                continue  # freed in between: try again
            expired = state.until is not None and state.until < time.time()
            if lease_owner.is_gone(state.owner) or expired:
                if await asyncio.to_thread(leases.take_over, self.account_id, LEASE_SECONDS, self.owner, state.owner):
                    self.previous = lease_owner.describe(state.owner)
                    log.warning(
                        "account %s: took over its refresh lease from %s, which %s (it stopped during a refresh)",
                        self.account_id,
                        self.previous,
                        "let it expire" if expired and not lease_owner.is_gone(state.owner) else "is gone",
                    )
                    return "interrupted"
                continue
            holder = f"{lease_owner.describe(state.owner)} until {time.strftime('%H:%M:%S', time.localtime(state.until or 0))}"
            if not announced:
                announced = True
                self.tell(f"account {self.account_id}: waiting up to {self.wait:.0f}s for its refresh lease, held by {holder}")
            if time.time() > deadline:
                raise LeaseBusy(f"account {self.account_id}: its refresh lease is held by {holder}; retry")
            await asyncio.sleep(WAIT_STEP)
        return "held"

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Renew the lease for as long as the block runs (a slow token endpoint must not let another process in)."""
        renewing = asyncio.get_running_loop().create_task(self._renew(), name=f"renew lease of account {self.account_id}")
        try:
            yield
        finally:
            renewing.cancel()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                await asyncio.to_thread(leases.renew, self.account_id, LEASE_SECONDS, self.owner)
            except Exception as exc:
                log.warning("renewing the refresh lease of account %s failed: %s", self.account_id, describe_store_error(exc))

    async def release(self) -> None:
        if self.keep:
            return  # it expires by itself after LEASE_SECONDS unless the next attempt resumes it
        try:
            await asyncio.to_thread(leases.release, self.account_id, self.owner)
        except Exception:
            log.exception("releasing the refresh lease of account %s failed (it expires by itself)", self.account_id)
