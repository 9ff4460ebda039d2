"""Refresh leases on account rows: one process at a time refreshes an account, and commits by compare-and-swap.

Every statement here is a single atomic UPDATE (SQLite and PostgreSQL alike): a lease is taken only when it is
free, expired or already ours; a token pair is written only over the version it was derived from, in the same
transaction that frees the lease. Who owns a lease, and whether that process is gone, is store.lease_owner's.
"""

from __future__ import annotations

import dataclasses
import time

from core.enums import AccountStatus
from core.redact import redact
from store.accounts import AccountView, TokenSet, record_event
from store.crypto import TokenCipher
from store.db import bump
from store.models import Account, database


@dataclasses.dataclass(frozen=True)
class LeaseState:
    token_version: int
    until: float | None
    owner: str | None


def acquire(account_id: int, seconds: float, owner: str) -> bool:
    """Take the lease if it is free (never re-entered, even by this process). A lease that expired while its owner
    held it is not free: that owner stopped during a refresh (or could not renew), so whether the provider spent the
    refresh token is unknown; `take_over` takes it knowing that."""
    now = time.time()
    taken = (
        Account.update(refresh_lease_owner=owner, refresh_lease_until=now + seconds)
        .where((Account.id == account_id) & Account.refresh_lease_owner.is_null())
        .execute()
    )
    return bool(taken)


def take_over(account_id: int, seconds: float, owner: str, previous: str) -> bool:
    """Take the lease from `previous` (a process that is gone), if it still holds it."""
    taken = (
        Account.update(refresh_lease_owner=owner, refresh_lease_until=time.time() + seconds)
        .where((Account.id == account_id) & (Account.refresh_lease_owner == previous))
        .execute()
    )
    return bool(taken)


def renew(account_id: int, seconds: float, owner: str) -> bool:
    """Extend our lease while a refresh call is still in the air (so nobody else spends the refresh token)."""
    renewed = (
        Account.update(refresh_lease_until=time.time() + seconds)
        .where((Account.id == account_id) & (Account.refresh_lease_owner == owner))
        .execute()
    )
    return bool(renewed)


def release(account_id: int, owner: str) -> None:
    Account.update(refresh_lease_owner=None, refresh_lease_until=None).where(
        (Account.id == account_id) & (Account.refresh_lease_owner == owner)
    ).execute()


def read(account_id: int, cipher: TokenCipher) -> AccountView | None:
    row = Account.get_or_none(Account.id == account_id)
    return None if row is None else AccountView.from_row(row, cipher)


def lease_state(account_id: int) -> LeaseState | None:
    row = (
        Account.select(Account.token_version, Account.refresh_lease_until, Account.refresh_lease_owner)
        .where(Account.id == account_id)
        .tuples()
        .first()
    )
    return None if row is None else LeaseState(row[0], row[1], row[2])


INTERRUPTED = "refresh_interrupted"  # account metadata: {version, at, owner} of a refresh whose owner stopped mid-call


def interrupted_version(metadata: dict[str, object]) -> int | None:
    """The token version whose refresh was cut by its owner stopping (its refresh token may be spent), if any."""
    note = metadata.get(INTERRUPTED)
    version = note.get("version") if isinstance(note, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def note_interrupted(account_id: int, version: int, owner: str) -> None:
    """Record that the refresh of token version `version` was cut by its owner stopping: every process then keeps
    using the stored access token while it is valid and does not re-send the refresh token until it runs out."""
    import json

    now = time.time()
    reason = (
        f"refresh interrupted: {owner} stopped while refreshing this account; the provider may already have rotated its "
        "refresh token, so it is not sent again while the stored access token is valid"
    )
    with database.atomic():
        row = Account.get_or_none(Account.id == account_id)
        if row is None or row.token_version != version:
            return
        meta = {**row.meta, INTERRUPTED: {"version": version, "at": now, "owner": owner}}
        Account.update(metadata=json.dumps(meta), last_refresh_result=reason, updated_at=now).where(Account.id == account_id).execute()
        record_event(account_id, "refresh", row.status, reason)
    bump("accounts")


def mark_reauth(account_id: int, refused_version: int, reason: str) -> bool:
    """needs_reauth, but only while the refused refresh token is still the stored one: a refresh that lost a race
    to a newer pair must not brand a healthy account dead."""
    now = time.time()
    with database.atomic():
        updated = (
            Account.update(
                status=AccountStatus.NEEDS_REAUTH, status_reason=redact(reason), cooldown_until=None, status_changed_at=now, updated_at=now
            )
            .where((Account.id == account_id) & (Account.token_version == refused_version))
            .execute()
        )
        if updated:
            record_event(account_id, "refresh", AccountStatus.NEEDS_REAUTH, reason)
    if updated:
        bump("accounts")
    return bool(updated)


def commit(account_id: int, expected_version: int, tokens: TokenSet, cipher: TokenCipher) -> bool:
    """Write the new pair if the stored one is still `expected_version`, and free the lease. False if it moved on."""
    import json

    now = time.time()
    with database.atomic():
        row = Account.get_or_none(Account.id == account_id)
        if row is None or row.token_version != expected_version:
            return False
        fields = {
            Account.access_token: cipher.encrypt_optional(tokens.access_token),
            Account.expires_at: tokens.expires_at,
            Account.token_version: expected_version + 1,
            Account.last_refresh_at: now,
            Account.last_refresh_result: "refresh ok",
            Account.updated_at: now,
            Account.refresh_lease_owner: None,
            Account.refresh_lease_until: None,
        }
        if tokens.refresh_token is not None:
            fields[Account.refresh_token] = cipher.encrypt(tokens.refresh_token)
        if tokens.metadata or INTERRUPTED in row.meta:
            meta = {**row.meta, **(tokens.metadata or {})}
            meta.pop(INTERRUPTED, None)  # a pair stored after an interrupted refresh: nothing is unknown any more
            fields[Account.metadata] = json.dumps(meta)
        if row.status == AccountStatus.NEEDS_REAUTH:
            fields[Account.status] = AccountStatus.ACTIVE
            fields[Account.status_reason] = ""
        updated = Account.update(fields).where((Account.id == account_id) & (Account.token_version == expected_version)).execute()
        if not updated:
            return False
        record_event(
            account_id, "refresh", row.status if row.status != AccountStatus.NEEDS_REAUTH else AccountStatus.ACTIVE, "tokens refreshed"
        )
    bump("accounts")
    return True
