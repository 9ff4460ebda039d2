"""Refresh leases on account rows: one process at a time refreshes an account, and commits by compare-and-swap.

Every statement here is a single atomic UPDATE (SQLite and PostgreSQL alike): a lease is taken only when it is
free, expired or already ours; a token pair is written only over the version it was derived from, in the same
transaction that frees the lease.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from store.accounts import AccountView, TokenSet, record_event
from store.crypto import TokenCipher
from store.db import bump
from store.models import Account, database

OWNER = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(account_id: int, seconds: float, owner: str = OWNER) -> bool:
    now = time.time()
    taken = (
        Account.update(refresh_lease_owner=owner, refresh_lease_until=now + seconds)
        .where(
            (Account.id == account_id)
            & (
                Account.refresh_lease_until.is_null()
                | (Account.refresh_lease_until < now)
                | (Account.refresh_lease_owner == owner)
            )
        )
        .execute()
    )
    return bool(taken)


def release(account_id: int, owner: str = OWNER) -> None:
    Account.update(refresh_lease_owner=None, refresh_lease_until=None).where(
        (Account.id == account_id) & (Account.refresh_lease_owner == owner)
    ).execute()


def read(account_id: int, cipher: TokenCipher) -> AccountView | None:
    row = Account.get_or_none(Account.id == account_id)
    return None if row is None else AccountView.from_row(row, cipher)


def lease_state(account_id: int) -> tuple[int, float | None] | None:
    row = (
        Account.select(Account.token_version, Account.refresh_lease_until)
        .where(Account.id == account_id)
        .tuples()
        .first()
    )
    return None if row is None else (row[0], row[1])


def commit(account_id: int, expected_version: int, tokens: TokenSet, cipher: TokenCipher, owner: str = OWNER) -> bool:
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
        if tokens.metadata:
            fields[Account.metadata] = json.dumps({**row.meta, **tokens.metadata})
        if row.status == "needs_reauth":
            fields[Account.status] = "active"
            fields[Account.status_reason] = ""
        updated = (
            Account.update(fields)
            .where((Account.id == account_id) & (Account.token_version == expected_version))
            .execute()
        )
        if not updated:
            return False
        record_event(account_id, "refresh", row.status if row.status != "needs_reauth" else "active", "tokens refreshed")
    bump("accounts")
    return True
