"""Fresh access tokens: refresh before expiry, one refresh per account at a time across threads and processes.

A request whose token is still valid never waits: a refresh it finds due starts in the background (or is already
running) and the request goes on with the current token. Only a request whose token has expired (or was refused)
waits for the refresh, for at most REQUEST_WAIT; the refresh itself goes on and stores what the provider answers,
however late (the provider has spent the old refresh token by then). In one process, concurrent requests share
one refresh task. Across processes, the account row's lease decides who refreshes: its owner renews it while the
provider call is in the air; a lease whose owner is gone (same host, process ended) is taken over at once, one
held elsewhere is waited for up to LEASE_WAIT. The new pair (with the rotated refresh token) is committed by
compare-and-swap before any request gets the new access token. A failure (provider or store) backs off.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import weakref
from collections.abc import Callable, Mapping

import httpx

from core.enums import AccountStatus
from core.exceptions import KleisError, ProviderError, ReauthRequired, StoreError, TransientProviderError
from core.listeners import tell_all
from providers.base import Provider
from providers.refresh_lease import LeaseBusy, LeaseHolder
from store import accounts as account_store
from store import leases
from store.accounts import AccountView, TokenSet
from store.db import Store, describe_store_error

log = logging.getLogger(__name__)

RENEWAL_WINDOW = 60.0  # a 401 to a token this fresh, issued after a 401, refuses the account
LEASE_WAIT = 15.0  # how long a refresh waits for a lease held by a live process (another host, or busy here)
REQUEST_WAIT = 30.0  # how long a request with an expired token waits for its refresh (which goes on regardless)
REFRESH_CALL_TIMEOUT = 600.0  # the token endpoint's answer is awaited this long: longer than providers keep one open
VALID_MARGIN = 5.0  # a token with less validity left than this is treated as expired
COMMIT_RETRY_DELAYS = (0.25, 1.0)  # a freshly issued pair is stored in up to 3 attempts before the refresh fails
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
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.http = http  # for token endpoints: its read timeout should be REFRESH_CALL_TIMEOUT
        self.on_update = on_update  # called with a fresher AccountView
        self.on_wait = on_wait  # told, in words, what a refresh waits for (the CLI prints it)
        self.request_wait = REQUEST_WAIT
        self.lease_wait = LEASE_WAIT
        self._inflight: dict[int, asyncio.Task[AccountView]] = {}
        self._stale: dict[int, int] = {}  # account id -> token version an upstream rejected
        # account id -> (token version issued to replace a rejected one, when): a 401 to it soon after means the
        # provider refuses the account, not the token
        self._renewed_after_401: dict[int, tuple[int, float]] = {}
        self._backoff: dict[int, tuple[float, float, str, float]] = {}  # id -> (not before, last delay, reason, state time)
        # Tokens a provider issued whose commit failed: committed by the next attempt, never handed out before.
        # The lease stays held (as the owner kept here) so no other attempt spends the refresh token meanwhile.
        self._uncommitted: dict[int, tuple[int, TokenSet, str]] = {}
        self._watched: weakref.WeakSet[asyncio.Task[AccountView]] = weakref.WeakSet()  # background ones, logged
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
        """The account with an access token that is good now. A still-valid token is returned at once (a due
        refresh runs in the background); an expired or refused one waits for its refresh, up to `request_wait`."""
        now = time.time()
        if not self.needs_refresh(account, now):
            return account
        usable = self._usable(account, now)
        wait = self.backoff_remaining(account.id, now, account.status_changed_at if account.status == AccountStatus.ACTIVE else None)
        if usable:
            if wait <= 0 and leases.interrupted_version(account.metadata) != account.token_version:
                self.refresh_soon(account.id)  # (not after an interrupted refresh: its token may be spent)
            return account
        if wait > 0:
            raise RefreshFailed(
                f"refreshing the {account.provider} account {account.id} keeps failing "
                f"({self._backoff[account.id][2]}); next attempt in {int(wait) + 1}s",
                retry_in=wait,
            )
        try:
            return await asyncio.wait_for(asyncio.shield(self._task(account.id, False, 0.0, None)), self.request_wait)
        except TimeoutError:
            raise RefreshFailed(
                f"refreshing the {account.provider} account {account.id} takes longer than {int(self.request_wait)}s; "
                "it goes on, retry shortly",
                retry_in=5,
            ) from None

    def _usable(self, account: AccountView, now: float) -> bool:
        """The stored access token may be sent now: not refused by an upstream, and valid a little longer."""
        until = self.providers[account.provider].valid_until(account)
        fresh_enough = until is None or until > now + VALID_MARGIN
        return self._stale.get(account.id) != account.token_version and bool(account.access_token) and fresh_enough

    def refresh_soon(self, account_id: int) -> None:
        """Start (or join) a refresh without waiting for it; its failure is logged and backs off."""
        task = self._task(account_id, False, 0.0, None)
        if task not in self._watched:
            self._watched.add(task)
            task.add_done_callback(functools.partial(_log_background_failure, account_id))

    async def refresh(self, account_id: int, *, force: bool = False, horizon: float = 0.0, newer_than: int | None = None) -> AccountView:
        """Refresh unless the stored token is good for `horizon` more seconds (or `force`). Single flight per account.

        `newer_than`: the token version an upstream refused; a stored version above it is taken as it is.
        """
        return await asyncio.shield(self._task(account_id, force, horizon, newer_than))

    def pending(self) -> list[asyncio.Task[AccountView]]:
        """Refreshes in flight (a shutdown lets them finish: the provider may already have spent the old token)."""
        return [task for task in self._inflight.values() if not task.done()]

    def _task(self, account_id: int, force: bool, horizon: float, newer_than: int | None) -> asyncio.Task[AccountView]:
        task = self._inflight.get(account_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._guarded(account_id, force, horizon, newer_than), name=f"refresh account {account_id}"
            )
            self._inflight[account_id] = task
            task.add_done_callback(functools.partial(self._forget_inflight, account_id))
        return task

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
            # Backed off like a provider failure: requests with a valid token go on, expired ones fail fast.
            delay = self._note_failure(account_id, f"the store is unavailable: {describe_store_error(exc)}", time.time())
            log.error("refreshing account %s failed on the store (%s); next attempt in %.0fs", account_id, describe_store_error(exc), delay)
            raise RefreshFailed(
                f"account {account_id} could not be refreshed: the store is unavailable ({type(exc).__name__})", retry_in=delay
            ) from None

    async def _refresh(self, account_id: int, force: bool, horizon: float, newer_than: int | None) -> AccountView:
        cipher = self.store.cipher
        seen = await asyncio.to_thread(leases.read, account_id, cipher)
        if seen is None:
            raise RefreshFailed(f"account {account_id} no longer exists")
        if newer_than is not None and seen.token_version > newer_than:
            return self._publish(seen)  # the refused token was already replaced
        start_version = seen.token_version
        kept = self._uncommitted.get(account_id)
        holder = LeaseHolder(account_id, wait=self.lease_wait, tell=self._tell, resume=kept[2] if kept else None)
        try:
            taken = await holder.take(start_version)
        except LeaseBusy as busy:
            log.warning("%s", busy)  # which process holds it is for the operator, not for the client
            raise RefreshFailed(f"account {account_id}: another Kleis process is refreshing its token; retry shortly", retry_in=5) from None
        if taken == "missing":
            raise RefreshFailed(f"account {account_id} no longer exists")
        if taken == "refreshed":  # another process refreshed while we waited
            return self._publish(await asyncio.to_thread(leases.read, account_id, cipher))
        try:
            if taken == "interrupted":
                await asyncio.to_thread(leases.note_interrupted, account_id, start_version, holder.previous)
            current = await asyncio.to_thread(leases.read, account_id, cipher)
            if current is None:
                raise RefreshFailed(f"account {account_id} no longer exists")
            if self._wait_out_interruption(current, force):
                return self._publish(current)
            if account_id in self._uncommitted:
                expected_version, tokens, _ = self._uncommitted[account_id]
                return self._publish(await self._commit(current, expected_version, tokens, holder))
            if current.token_version > start_version or (
                not force
                and self._stale.get(account_id) != current.token_version
                and not self.providers[current.provider].needs_refresh(current, time.time() + horizon)
            ):
                return self._publish(current)  # someone else already refreshed it
            return self._publish(await self._call_provider(current, holder))
        finally:
            await holder.release()

    def _wait_out_interruption(self, account: AccountView, force: bool) -> bool:
        """After a refresh cut by its owner stopping (killed mid-call), the stored refresh token may be spent: the
        provider may have rotated it and the answer died with the process. It is not re-sent while the stored
        access token is valid and nobody refused it (requests go on with it); once it runs out (or is refused, or
        an operator forces a refresh) the refresh is tried once, and a refusal then asks for a new login."""
        if leases.interrupted_version(account.metadata) != account.token_version or force or not self._usable(account, time.time()):
            return False
        until = self.providers[account.provider].valid_until(account)
        log.warning(
            "account %s: its last refresh was interrupted (the refresh token may be spent); using the stored access token "
            "until it runs out%s, then trying the refresh once",
            account.id,
            "" if until is None else f" at {time.strftime('%H:%M:%S', time.localtime(until))}",
        )
        return True

    def _tell(self, text: str) -> None:
        log.info("%s", text)
        if self.on_wait is not None:
            self.on_wait(text)

    async def _call_provider(self, account: AccountView, holder: LeaseHolder) -> AccountView:
        provider = self.providers[account.provider]
        if not account.refresh_token:
            await asyncio.to_thread(account_store.set_status, account.id, AccountStatus.NEEDS_REAUTH, "no refresh credential stored")
            raise RefreshFailed(f"{provider.display_name} account {account.id} has no refresh credential: log in again", reauth=True)
        self.refresh_calls += 1
        try:
            async with holder.kept():
                tokens: TokenSet = await provider.refresh(account, self.http)
        except ReauthRequired as exc:
            self._report(account.provider, "reauth")
            reason = f"refresh refused: {exc}"
            if leases.interrupted_version(account.metadata) == account.token_version:
                reason = (
                    f"refresh refused after an interrupted refresh: a Kleis process stopped while refreshing this account, "
                    f"and the provider had already rotated its refresh token ({exc}); log in again"
                )
            if not await asyncio.to_thread(leases.mark_reauth, account.id, account.token_version, reason):
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
        self._uncommitted[account.id] = (account.token_version, tokens, holder.owner)
        return await self._commit(account, account.token_version, tokens, holder)

    async def _commit(self, account: AccountView, expected_version: int, tokens: TokenSet, holder: LeaseHolder) -> AccountView:
        """Store a rotated pair before anyone uses it, retrying while the lease is kept; when every attempt fails,
        keep the pair and the lease for the next refresh attempt to store (the old refresh token is spent)."""
        async with holder.kept():
            for delay in (0.0, *COMMIT_RETRY_DELAYS):
                await asyncio.sleep(delay)
                try:
                    committed = await asyncio.to_thread(leases.commit, account.id, expected_version, tokens, self.store.cipher)
                    break
                except Exception as exc:
                    failure = describe_store_error(exc)
                    log.warning("storing the refreshed tokens of account %s failed (%s)", account.id, failure)
            else:
                holder.keep = True
                self._report(account.provider, "store_failed")
                log.error("the refreshed tokens of account %s are not stored yet (%s); the next attempt stores them", account.id, failure)
                raise RefreshFailed(
                    f"the refreshed tokens of {account.provider} account {account.id} could not be stored ({failure}); retry",
                    retry_in=1,
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
        tell_all(self.on_refreshed, view, "refresh")

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


def _log_background_failure(account_id: int, task: asyncio.Task[AccountView]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.warning("background refresh of account %s failed (%s); its current token is used while it is valid", account_id, exc)
