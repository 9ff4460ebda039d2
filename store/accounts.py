"""Account queries: login upserts, token writes with compare-and-swap, state changes and their log."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

from core.account_state import usable
from core.display import account_name
from core.enums import AccountStatus
from core.exceptions import InvalidInput, NotFound
from core.redact import redact
from store.crypto import TokenCipher
from store.db import bump
from store.models import Account, AccountEvent, AccountQuota, database

STATUSES = tuple(AccountStatus)


@dataclasses.dataclass(frozen=True)
class TokenSet:
    """Tokens as a provider hands them out. `refresh_token` None keeps the stored one."""

    access_token: str | None
    refresh_token: str | None
    expires_at: float | None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


DERIVED_FIELDS = frozenset({"access_token", "refresh_token", "metadata", "status_changed_at"})  # not copied as stored


@dataclasses.dataclass(frozen=True)
class AccountView:
    """A decrypted, read-only snapshot of an account, as the proxy's cache holds it."""

    id: int
    provider: str
    label: str
    identity: str
    email: str | None
    status: str
    status_reason: str
    cooldown_until: float | None
    is_primary: bool
    access_token: str | None
    refresh_token: str | None
    expires_at: float | None
    token_version: int
    metadata: dict[str, Any]
    created_at: float
    last_refresh_at: float | None
    last_refresh_result: str
    status_changed_at: float = 0.0

    @classmethod
    def from_row(cls, row: Account, cipher: TokenCipher) -> AccountView:
        """The row's columns by name; tokens decrypted, metadata parsed."""
        values = {field.name: getattr(row, field.name) for field in dataclasses.fields(cls) if field.name not in DERIVED_FIELDS}
        return cls(
            **values,
            access_token=cipher.decrypt_optional(row.access_token),
            refresh_token=cipher.decrypt_optional(row.refresh_token),
            metadata=row.meta,
            status_changed_at=row.status_changed_at or 0.0,
        )

    @property
    def display_name(self) -> str:
        return account_name(self.label, self.email, self.identity)

    def usable(self, now: float | None = None) -> bool:
        return usable(self.status, self.cooldown_until, time.time() if now is None else now)


def record_event(account_id: int, kind: str, status: str = "", reason: str = "") -> None:
    AccountEvent.create(account_id=account_id, kind=kind, status=status, reason=redact(reason)[:2000])


def upsert_account(
    provider: str,
    identity: str,
    tokens: TokenSet,
    cipher: TokenCipher,
    *,
    email: str | None = None,
    label: str = "",
    how: str = "login",
) -> tuple[Account, bool]:
    """Store a logged-in or imported account; the same identity updates its row. Returns (row, created)."""
    if not identity:
        raise InvalidInput("the provider did not say which account this is (no identity)")
    now = time.time()
    with database.atomic():
        existing = Account.get_or_none((Account.provider == provider) & (Account.identity == identity))
        created = existing is None
        row = existing if existing is not None else Account(provider=provider, identity=identity, created_at=now)
        if created:
            row.is_primary = not Account.select().where(Account.provider == provider).exists()
        row.email = email or row.email
        row.label = row.label or label or ""  # a label the operator set survives a new login
        row.access_token = cipher.encrypt_optional(tokens.access_token)
        if tokens.refresh_token is not None:
            row.refresh_token = cipher.encrypt(tokens.refresh_token)
        row.expires_at = tokens.expires_at
        row.metadata = json.dumps({**(row.meta if not created else {}), **tokens.metadata})
        row.status, row.status_reason, row.cooldown_until = AccountStatus.ACTIVE, "", None
        row.status_changed_at = now
        row.token_version = (row.token_version or 0) + 1
        row.last_refresh_at, row.last_refresh_result = now, f"{how} ok"
        row.updated_at = now
        row.save()
        record_event(row.id, how, AccountStatus.ACTIVE, f"{how} {'added' if created else 'updated'} the account")
    bump("accounts")
    return row, created


def set_status(account_id: int, status: str, reason: str = "", *, cooldown_until: float | None = None, kind: str = "status") -> None:
    """Change an account's state (reasons shown to operators are redacted). Health changes (`kind="health"`) only
    apply to an account that is active or cooling: they never undo an operator's disable or a needs-reauth."""
    if status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}")
    reason = redact(reason)
    now = time.time()
    with database.atomic():
        where = Account.id == account_id
        if kind == "health":
            where &= Account.status.in_((AccountStatus.ACTIVE, AccountStatus.COOLING))
        updated = (
            Account.update(status=status, status_reason=reason, cooldown_until=cooldown_until, status_changed_at=now, updated_at=now)
            .where(where)
            .execute()
        )
        if not updated:
            if kind == "health":
                return
            raise NotFound(f"no account with id {account_id}")
        record_event(account_id, kind, status, reason)
    bump("accounts")


def note_metadata(account_id: int, note: Mapping[str, Any], reason: str) -> bool:
    """Merge facts a provider stated about an account (e.g. the lane it bills third-party traffic to) into its
    metadata; each fact that changes also gets `<name>_since` (the time) and an event. False when nothing changed."""
    now = time.time()
    with database.atomic():
        row = Account.get_or_none(Account.id == account_id)
        if row is None:
            return False
        meta = row.meta
        changed = {name: value for name, value in note.items() if meta.get(name) != value}
        if not changed:
            return False
        meta.update(changed)
        meta.update({f"{name}_since": now for name in changed})
        Account.update(metadata=json.dumps(meta), updated_at=now).where(Account.id == account_id).execute()
        record_event(account_id, "note", "", reason)
    bump("accounts")
    return True


def note_refresh_result(account_id: int, result: str) -> None:
    now = time.time()
    Account.update(last_refresh_at=now, last_refresh_result=redact(result)[:2000], updated_at=now).where(Account.id == account_id).execute()
    record_event(account_id, "refresh", "", result)
    bump("accounts")


def find_account(ident: str | int) -> Account:
    text = str(ident).strip()
    # isdigit() is true for "²" (int() refuses it); SQLite integers stop at 2**63: neither can name an account.
    row = Account.get_or_none(Account.id == int(text)) if text.isascii() and text.isdigit() and len(text) <= 18 else None
    if row is None:
        raise NotFound(f"no account with id {text!r}")
    return row


def set_primary(account_id: int) -> Account:
    row = find_account(account_id)
    with database.atomic():
        Account.update(is_primary=False).where((Account.provider == row.provider) & (Account.id != row.id)).execute()
        Account.update(is_primary=True, updated_at=time.time()).where(Account.id == row.id).execute()
        record_event(row.id, "admin", row.status, "made primary")
    bump("accounts")
    return find_account(account_id)


def remove_account(account_id: int) -> None:
    row = find_account(account_id)
    with database.atomic():
        row.delete_instance()
        AccountQuota.delete().where(AccountQuota.account_id == account_id).execute()
        if row.is_primary:
            successor = Account.select().where(Account.provider == row.provider).order_by(Account.created_at.desc()).first()
            if successor is not None:
                Account.update(is_primary=True).where(Account.id == successor.id).execute()
    bump("accounts")


def load_views(cipher: TokenCipher) -> list[AccountView]:
    return [AccountView.from_row(row, cipher) for row in Account.select().order_by(Account.id)]


def recent_events(account_id: int, limit: int = 20) -> list[AccountEvent]:
    return list(
        AccountEvent.select()
        .where(AccountEvent.account_id == account_id)
        .order_by(AccountEvent.at.desc(), AccountEvent.id.desc())
        .limit(limit)
    )


def account_to_dict(row: Account, now: float | None = None) -> dict[str, Any]:
    """An account for listings: state and why, never tokens."""
    now = time.time() if now is None else now
    return {
        "id": row.id,
        "provider": row.provider,
        "label": row.label,
        "identity": row.identity,
        "email": row.email,
        "status": row.status,
        "status_reason": row.status_reason,
        "status_changed_at": row.status_changed_at,
        "cooldown_until": row.cooldown_until,
        "is_primary": row.is_primary,
        "expires_at": row.expires_at,
        "expires_in": None if row.expires_at is None else round(row.expires_at - now),
        "has_refresh_token": row.refresh_token is not None,
        "last_refresh_at": row.last_refresh_at,
        "last_refresh_result": row.last_refresh_result,
        "created_at": row.created_at,
        "metadata": row.meta,
    }
