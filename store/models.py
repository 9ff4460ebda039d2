"""Peewee models of the Kleis store, declared together (the current schema)."""

from __future__ import annotations

import json
import time
from typing import Any

import peewee

database = peewee.DatabaseProxy()


def now() -> float:
    return time.time()


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Account(BaseModel):
    """One subscription OAuth account of a provider. Tokens are encrypted (store.crypto).

    `identity` is the provider's stable account id: logging in again with the same
    identity updates this row. `token_version` grows on every token write, so a
    writer can compare-and-swap and never put an older pair over a newer one.
    """

    id = peewee.AutoField()
    provider = peewee.CharField(max_length=32, index=True)
    label = peewee.CharField(max_length=200, default="")
    identity = peewee.CharField(max_length=200)
    email = peewee.CharField(max_length=320, null=True)
    status = peewee.CharField(max_length=16, default="active")  # active | cooling | needs_reauth | disabled
    status_reason = peewee.TextField(default="")
    status_changed_at = peewee.DoubleField(default=now)
    cooldown_until = peewee.DoubleField(null=True)
    is_primary = peewee.BooleanField(default=False)
    access_token = peewee.TextField(null=True)  # encrypted
    refresh_token = peewee.TextField(null=True)  # encrypted
    expires_at = peewee.DoubleField(null=True)
    token_version = peewee.IntegerField(default=0)
    refresh_lease_owner = peewee.CharField(max_length=64, null=True)
    refresh_lease_until = peewee.DoubleField(null=True)
    last_refresh_at = peewee.DoubleField(null=True)
    last_refresh_result = peewee.TextField(default="")
    metadata = peewee.TextField(default="{}")  # JSON, never secrets
    created_at = peewee.DoubleField(default=now)
    updated_at = peewee.DoubleField(default=now)

    class Meta:
        indexes = ((("provider", "identity"), True),)

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = json.loads(self.metadata or "{}")
        return meta


class AccountEvent(BaseModel):
    """Every change of an account's state, with its time and reason (why it is not used)."""

    id = peewee.AutoField()
    account_id = peewee.IntegerField(index=True)
    at = peewee.DoubleField(default=now)
    kind = peewee.CharField(max_length=32)  # status | refresh | login | admin
    status = peewee.CharField(max_length=16, default="")
    reason = peewee.TextField(default="")


class ApiKey(BaseModel):
    """A client key of Kleis. Only its SHA-256 is stored; the key is shown once."""

    id = peewee.AutoField()
    public_id = peewee.CharField(max_length=32, unique=True)
    key_hash = peewee.CharField(max_length=64, unique=True)
    name = peewee.CharField(max_length=200)
    providers = peewee.TextField(default="[]")  # JSON list; empty = every provider
    models = peewee.TextField(default="[]")  # JSON list of exact ids or prefix*; empty = every model
    expires_at = peewee.DoubleField(null=True)
    revoked_at = peewee.DoubleField(null=True)
    created_at = peewee.DoubleField(default=now)
    last_used_at = peewee.DoubleField(null=True)
    rate_limit = peewee.IntegerField(null=True)  # requests per minute; None = no limit
    concurrency_limit = peewee.IntegerField(null=True)  # requests in flight at once; None = no limit
    token_budget = peewee.BigIntegerField(null=True)  # tokens per budget window; None = no budget
    cost_budget = peewee.DoubleField(null=True)  # USD (list prices) per budget window; None = no budget
    budget_window = peewee.CharField(max_length=8, default="month")  # day | week | month, calendar, in KLEIS_TIMEZONE
    translation = peewee.BooleanField(default=True)  # False: only models a provider serves on the client's protocol


class OAuthState(BaseModel):
    """A login in progress, so it can start in one process and finish in another."""

    id = peewee.AutoField()
    state = peewee.CharField(max_length=128, unique=True)
    provider = peewee.CharField(max_length=32)
    verifier = peewee.TextField(default="")  # encrypted
    flow_data = peewee.TextField(default="")  # encrypted JSON (device codes, redirect uri)
    created_at = peewee.DoubleField(default=now)
    expires_at = peewee.DoubleField()


class UsageEvent(BaseModel):
    """One proxied request: who, where, what it cost. Written in batches, off the hot path."""

    id = peewee.AutoField()
    request_id = peewee.CharField(max_length=64, unique=True)
    created_at = peewee.DoubleField(default=now, index=True)
    key_id = peewee.IntegerField(null=True, index=True)
    account_id = peewee.IntegerField(null=True, index=True)
    provider = peewee.CharField(max_length=32, default="")
    protocol = peewee.CharField(max_length=32, default="")
    model = peewee.CharField(max_length=200, default="")
    upstream_model = peewee.CharField(max_length=200, default="")
    status = peewee.IntegerField(default=0)
    error_type = peewee.CharField(max_length=100, default="")
    streamed = peewee.BooleanField(default=False)
    incomplete = peewee.BooleanField(default=False)
    ttfb_ms = peewee.DoubleField(null=True)
    latency_ms = peewee.DoubleField(null=True)
    input_tokens = peewee.IntegerField(default=0)
    output_tokens = peewee.IntegerField(default=0)
    cache_read_tokens = peewee.IntegerField(default=0)
    cache_write_tokens = peewee.IntegerField(default=0)
    reasoning_tokens = peewee.IntegerField(default=0)
    cost_usd = peewee.DoubleField(null=True)  # at the list prices of the time; None: the model has no prices
    raw_usage = peewee.TextField(default="")
    quota_claim = peewee.CharField(max_length=64, default="")  # the window Claude counted the request against
    quota_overage = peewee.CharField(max_length=32, default="")  # Claude's overage (extra usage) status then
    translation = peewee.CharField(max_length=32, default="")  # e.g. messages→responses: served by translation


class AccountQuota(BaseModel):
    """The last subscription quota seen for an account (providers.quota, as JSON), shared by every process."""

    account_id = peewee.IntegerField(primary_key=True)
    reading = peewee.TextField(default="{}")  # JSON: windows (used share, reset, status), claim, overage
    seen_at = peewee.DoubleField(default=0.0)


class KeyUsage(BaseModel):
    """A key's running totals per calendar window (one row per key, kind and window start), added to by the usage
    writer in the transaction that stores the events: budgets read these few rows, never the events."""

    id = peewee.AutoField()
    key_id = peewee.IntegerField()
    kind = peewee.CharField(max_length=8)  # day | week | month
    starts_at = peewee.DoubleField()  # the window's start (local midnight in KLEIS_TIMEZONE), unix time
    requests = peewee.BigIntegerField(default=0)
    tokens = peewee.BigIntegerField(default=0)  # input + cache read + cache write + output
    cost_usd = peewee.DoubleField(default=0.0)

    class Meta:
        indexes = ((("kind", "starts_at", "key_id"), True),)


class Setting(BaseModel):
    """Small key/value facts about the store (schema version, key check value)."""

    key = peewee.CharField(max_length=64, primary_key=True)
    value = peewee.TextField()


class ChangeCounter(BaseModel):
    """Grows on every change of a table the proxy caches, so caches follow the store."""

    name = peewee.CharField(max_length=32, primary_key=True)
    value = peewee.BigIntegerField(default=0)


ALL_MODELS = (Account, AccountEvent, ApiKey, OAuthState, UsageEvent, AccountQuota, KeyUsage, Setting, ChangeCounter)
