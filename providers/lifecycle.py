"""Fresh access tokens: refresh before expiry, one refresh per account at a time across threads and processes.

In one process, concurrent requests await the same refresh task. Across processes, the account row's lease
decides who refreshes; the others wait, then read the new tokens. The new pair (with the rotated refresh token)
is committed by compare-and-swap before any request gets the new access token.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable, Mapping

import httpx

from core.enums import AccountStatus
from core.exceptions import KleisError, ProviderError, ReauthRequired, StoreError, TransientProviderError
from providers.base import Provider
from store import accounts as account_store
from store import leases
from store.accounts import AccountView, TokenSet
from store.db import Store

log = logging.getLogger(__name__)

RENEWAL_WINDOW = 60.0  # a 401 to a token this fresh, issued after a 401, refuses the account
LEASE_SECONDS = 60.0  # longer than one refresh call can take (10 s connect + 30 s read)
WAIT_STEP = 0.05
FAULT_ENV = "KLEIS_FAULT_AFTER_TOKENS_ISSUED"  # test hook: die between the provider's answer and the commit


class RefreshFailed(KleisError):
    """A refresh did not produce a usable token; `retry_in` says when the next attempt is allowed."""

    def __init__(self, message: str, *, reauth: bool = False, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.reauth = reauth
        self.retry_in = retry_in


class TokenManager:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        http: httpx.AsyncClient,
        on_update: Callable[[AccountView], None] | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.http = http
        self.on_update = on_update  # called with a fresher AccountView
        self._inflight: dict[int, asyncio.Task[AccountView]] = {}
        self._stale: dict[int, int] = {}  # account id -> token version an upstream rejected
        # account id -> (token version issued to replace a rejected one, when): a 401 to it soon after means the
        # provider refuses the account, not the token
        self._renewed_after_401: dict[int, tuple[int, float]] = {}
        self._backoff: dict[int, tuple[float, float, str, float]] = {}  # id -> (not before, last delay, reason, state time)
        # Tokens a provider issued whose commit failed: committed by the next attempt, never handed out before.
        self._uncommitted: dict[int, tuple[int, TokenSet]] = {}
        self.refresh_calls = 0
        self.on_refreshed: list[Callable[[AccountView], None]] = []  # told of each pair this process commits
        self.on_refresh: Callable[[str, str], None] | None = None  # (provider, result): the metrics count refresh calls

    def _report(self, provider: str, result: str) -> None:
        if self.on_refresh is not None:
            try:
                self.on_refresh(provider, result)
            except Exception:
                log.exception("refresh result listener failed")

    # -- decisions ---------------------------------------------------------------------
    def needs_refresh(self, account: AccountView, now: float | None = None) -> bool:
        if self._stale.get(account.id) == account.token_version:
            return True
        return self.providers[account.provider].needs_refresh(account, now)

    def mark_stale(self, account: AccountView) -> None:
        """An upstream said 401 to this token: the next request refreshes first."""
        self._stale[account.id] = account.token_version

    def refused_after_renewal(self, account: AccountView, now: float | None = None) -> bool:
        """This token was issued within RENEWAL_WINDOW because its predecessor got a 401, and now it gets one too.
        Answered once per renewal: after the account's cooldown, a 401 is a stale token again (refresh, retry)."""
        entry = self._renewed_after_401.get(account.id)
        if entry is None or entry[0] != account.token_version:
            return False
        del self._renewed_after_401[account.id]
        return (time.time() if now is None else now) - entry[1] <= RENEWAL_WINDOW

    def backoff_remaining(self, account_id: int, now: float | None = None, state_changed_at: float | None = None) -> float:
        """Seconds until the next refresh attempt is allowed; a later state change (reset, login) lifts it."""
        entry = self._backoff.get(account_id)
        if entry is None:
            return 0.0
        if state_changed_at is not None and state_changed_at > entry[3]:
            self._backoff.pop(account_id, None)
            return 0.0
        return max(0.0, entry[0] - (time.time() if now is None else now))

    # -- the request path ----------------------------------------------------------------
    async def fresh(self, account: AccountView) -> AccountView:
        """The account with an access token that is good now, refreshing it first if needed."""
        now = time.time()
        if not self.needs_refresh(account, now):
            return account
        still_valid = account.access_token and (account.expires_at is None or account.expires_at > now + 5)
        wait = self.backoff_remaining(account.id, now, account.status_changed_at if account.status == AccountStatus.ACTIVE else None)
        if wait > 0:
            if still_valid and self._stale.get(account.id) != account.token_version:
                return account
            raise RefreshFailed(
                f"refreshing the {account.provider} account {account.id} keeps failing "
                f"({self._backoff[account.id][2]}); next attempt in {int(wait) + 1}s",
                retry_in=wait,
            )
        try:
            return await self.refresh(account.id)
        except RefreshFailed:
            if still_valid and self._stale.get(account.id) != account.token_version:
                log.warning("refresh of account %s failed; using its current token until it expires", account.id)
                return account
            raise

    async def refresh(self, account_id: int, *, force: bool = False, horizon: float = 0.0, newer_than: int | None = None) -> AccountView:
        """Refresh unless the stored token is good for `horizon` more seconds (or `force`). Single flight per account.

        `newer_than`: the token version an upstream refused; a stored version above it is taken as it is.
        """
        task = self._inflight.get(account_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._guarded(account_id, force, horizon, newer_than), name=f"refresh account {account_id}"
            )
            self._inflight[account_id] = task
            task.add_done_callback(functools.partial(self._forget_inflight, account_id))
        return await asyncio.shield(task)

    def _forget_inflight(self, account_id: int, task: asyncio.Task[AccountView]) -> None:
        if self._inflight.get(account_id) is task:
            del self._inflight[account_id]

    # -- one refresh ---------------------------------------------------------------------
    async def _guarded(self, account_id: int, force: bool, horizon: float, newer_than: int | None) -> AccountView:
        """A store that cannot be read or written fails the refresh cleanly (the caller may keep a valid token)."""
        try:
            return await self._refresh(account_id, force, horizon, newer_than)
        except (RefreshFailed, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.error("refreshing account %s failed on the store: %s", account_id, exc)
            raise RefreshFailed(
                f"account {account_id} could not be refreshed: the store is unavailable ({type(exc).__name__})", retry_in=5
            ) from None

    async def _refresh(self, account_id: int, force: bool, horizon: float, newer_than: int | None) -> AccountView:
        cipher = self.store.cipher
        seen = await asyncio.to_thread(leases.read, account_id, cipher)
        if seen is None:
            raise RefreshFailed(f"account {account_id} no longer exists")
        if newer_than is not None and seen.token_version > newer_than:
            return self._publish(seen)  # the refused token was already replaced
        start_version = seen.token_version
        owner = leases.new_owner()
        deadline = time.time() + LEASE_SECONDS * 2
        while not await asyncio.to_thread(leases.acquire, account_id, LEASE_SECONDS, owner):
            state = await asyncio.to_thread(leases.lease_state, account_id)
            if state is None:
                raise RefreshFailed(f"account {account_id} no longer exists")
            if state[0] > start_version:  # another process refreshed while we waited
                return self._publish(await asyncio.to_thread(leases.read, account_id, cipher))
            if time.time() > deadline:
                raise RefreshFailed(f"account {account_id}: another Kleis process holds its refresh lease", retry_in=5)
            await asyncio.sleep(WAIT_STEP)
        try:
            current = await asyncio.to_thread(leases.read, account_id, cipher)
            if current is None:
                raise RefreshFailed(f"account {account_id} no longer exists")
            if account_id in self._uncommitted:
                return self._publish(await self._commit(current, *self._uncommitted[account_id]))
            if current.token_version > start_version or (
                not force
                and self._stale.get(account_id) != current.token_version
                and not self.providers[current.provider].needs_refresh(current, time.time() + horizon)
            ):
                return self._publish(current)  # someone else already refreshed it
            return self._publish(await self._call_provider(current))
        finally:
            try:
                await asyncio.to_thread(leases.release, account_id, owner)
            except Exception:
                log.exception("releasing the refresh lease of account %s failed (it expires by itself)", account_id)

    async def _call_provider(self, account: AccountView) -> AccountView:
        provider = self.providers[account.provider]
        if not account.refresh_token:
            await asyncio.to_thread(account_store.set_status, account.id, AccountStatus.NEEDS_REAUTH, "no refresh credential stored")
            raise RefreshFailed(f"{provider.display_name} account {account.id} has no refresh credential: log in again", reauth=True)
        self.refresh_calls += 1
        try:
            tokens: TokenSet = await provider.refresh(account, self.http)
        except ReauthRequired as exc:
            self._report(account.provider, "reauth")
            if not await asyncio.to_thread(leases.mark_reauth, account.id, account.token_version, f"refresh refused: {exc}"):
                newer = await asyncio.to_thread(leases.read, account.id, self.store.cipher)
                if newer is not None:
                    return newer  # another refresh stored a newer pair meanwhile: ours was refused for that reason
            raise RefreshFailed(f"{provider.display_name} account {account.id} needs a new login ({exc})", reauth=True) from None
        except (TransientProviderError, ProviderError, httpx.HTTPError) as exc:
            # Anything but a dead credential keeps the tokens and backs off (a refusal we do not understand may pass).
            self._report(account.provider, "failed")
            delay = self._note_failure(account.id, str(exc) or type(exc).__name__, account.status_changed_at)
            await asyncio.to_thread(account_store.note_refresh_result, account.id, f"refresh failed: {exc}")
            raise RefreshFailed(f"refreshing {provider.display_name} account {account.id} failed: {exc}", retry_in=delay) from None
        if os.environ.get(FAULT_ENV):
            log.error("fault injection: exiting after the provider issued tokens, before the commit")
            os._exit(17)
        self._report(account.provider, "ok")
        self._uncommitted[account.id] = (account.token_version, tokens)
        return await self._commit(account, account.token_version, tokens)

    async def _commit(self, account: AccountView, expected_version: int, tokens: TokenSet) -> AccountView:
        """Store a rotated pair before anyone uses it; on failure keep it for the next attempt to commit."""
        try:
            committed = await asyncio.to_thread(leases.commit, account.id, expected_version, tokens, self.store.cipher)
        except Exception as exc:
            self._report(account.provider, "store_failed")
            log.error("storing the refreshed tokens of account %s failed (%s); the next attempt stores them", account.id, exc)
            raise RefreshFailed(
                f"the refreshed tokens of {account.provider} account {account.id} could not be stored ({exc}); retry", retry_in=1
            ) from None
        self._uncommitted.pop(account.id, None)
        newest = await asyncio.to_thread(leases.read, account.id, self.store.cipher)
        if newest is None:
            raise RefreshFailed(f"account {account.id} was removed during its refresh")
        if not committed:
            log.warning("account %s moved to a newer token version during refresh; keeping the newer one", account.id)
        self._backoff.pop(account.id, None)
        self._tell_refreshed(newest)
        if self._stale.pop(account.id, None) is not None:  # this pair replaces a token an upstream refused
            self._renewed_after_401[account.id] = (newest.token_version, time.time())
        else:
            self._renewed_after_401.pop(account.id, None)
        return newest

    def _tell_refreshed(self, view: AccountView) -> None:
        for listener in self.on_refreshed:
            try:
                listener(view)
            except Exception:
                log.exception("a refresh listener failed")

    def _note_failure(self, account_id: int, reason: str, state_changed_at: float) -> float:
        previous = self._backoff.get(account_id)
        delay = min(300.0, (previous[1] * 2) if previous else 5.0)
        self._backoff[account_id] = (time.time() + delay, delay, reason, state_changed_at)
        return delay

    def _publish(self, view: AccountView | None) -> AccountView:
        if view is None:
            raise StoreError("account vanished")
        if self.on_update is not None:
            self.on_update(view)
        return view


def refresh_now_blocking(store: Store, account_id: int) -> AccountView:
    """For the CLI: one forced refresh, outside any proxy."""
    from providers.registry import provider_map

    providers = provider_map(store.config)
    row = leases.read(account_id, store.cipher)
    if row is not None and row.provider not in providers:
        raise KleisError(f"the {row.provider} provider is not available in this build of Kleis")

    async def run() -> AccountView:
        async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
            manager = TokenManager(store, providers, http)
            return await manager.refresh(account_id, force=True)

    try:
        return asyncio.run(run())
    except RefreshFailed as exc:
        raise KleisError(str(exc)) from None
