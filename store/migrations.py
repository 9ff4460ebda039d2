"""Schema versions of the store and the steps that migrate one to the next."""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from core.exceptions import StoreError

log = logging.getLogger(__name__)


def _v1_models(db: peewee.Database) -> list[type[peewee.Model]]:
    """The first schema (issue #2), frozen: later changes to store.models must not alter it."""

    class Base(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Account(Base):
        provider = peewee.CharField(max_length=32, index=True)
        label = peewee.CharField(max_length=200, default="")
        identity = peewee.CharField(max_length=200)
        email = peewee.CharField(max_length=320, null=True)
        status = peewee.CharField(max_length=16, default="active")
        status_reason = peewee.TextField(default="")
        status_changed_at = peewee.DoubleField()
        cooldown_until = peewee.DoubleField(null=True)
        is_primary = peewee.BooleanField(default=False)
        access_token = peewee.TextField(null=True)
        refresh_token = peewee.TextField(null=True)
        expires_at = peewee.DoubleField(null=True)
        token_version = peewee.IntegerField(default=0)
        last_refresh_at = peewee.DoubleField(null=True)
        last_refresh_result = peewee.TextField(default="")
        metadata = peewee.TextField(default="{}")
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()

        class Meta:
            indexes = ((("provider", "identity"), True),)

    class ApiKey(Base):
        public_id = peewee.CharField(max_length=32, unique=True)
        key_hash = peewee.CharField(max_length=64, unique=True)
        name = peewee.CharField(max_length=200)
        providers = peewee.TextField(default="[]")
        models = peewee.TextField(default="[]")
        expires_at = peewee.DoubleField(null=True)
        revoked_at = peewee.DoubleField(null=True)
        created_at = peewee.DoubleField()
        last_used_at = peewee.DoubleField(null=True)

    class OAuthState(Base):
        state = peewee.CharField(max_length=128, unique=True)
        provider = peewee.CharField(max_length=32)
        verifier = peewee.TextField(default="")
        flow_data = peewee.TextField(default="")
        created_at = peewee.DoubleField()
        expires_at = peewee.DoubleField()

    class UsageEvent(Base):
        request_id = peewee.CharField(max_length=64, unique=True)
        created_at = peewee.DoubleField(index=True)
        key_id = peewee.IntegerField(null=True, index=True)
        account_id = peewee.IntegerField(null=True, index=True)
        provider = peewee.CharField(max_length=32, default="")
        model = peewee.CharField(max_length=200, default="")
        status = peewee.IntegerField(default=0)
        streamed = peewee.BooleanField(default=False)
        latency_ms = peewee.DoubleField(null=True)
        input_tokens = peewee.IntegerField(default=0)
        output_tokens = peewee.IntegerField(default=0)
        cache_read_tokens = peewee.IntegerField(default=0)
        cache_write_tokens = peewee.IntegerField(default=0)

    class Setting(Base):
        key = peewee.CharField(max_length=64, primary_key=True)
        value = peewee.TextField()

    class ChangeCounter(Base):
        name = peewee.CharField(max_length=32, primary_key=True)
        value = peewee.BigIntegerField(default=0)

    return [Account, ApiKey, OAuthState, UsageEvent, Setting, ChangeCounter]


def create_v1(db: peewee.Database) -> None:
    db.create_tables(_v1_models(db))


def migrate_v2(db: peewee.Database) -> None:
    """Account health (#7): a refresh lease per account and a log of state changes."""
    from store.models import AccountEvent

    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("account", "refresh_lease_owner", peewee.CharField(max_length=64, null=True)),
        migrator.add_column("account", "refresh_lease_until", peewee.DoubleField(null=True)),
    )
    with db.bind_ctx([AccountEvent]):
        db.create_tables([AccountEvent])


def migrate_v3(db: peewee.Database) -> None:
    """Usage detail (#10): protocol, upstream model, errors, reasoning, first byte, raw usage."""
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("usage_event", "protocol", peewee.CharField(max_length=32, default="")),
        migrator.add_column("usage_event", "upstream_model", peewee.CharField(max_length=200, default="")),
        migrator.add_column("usage_event", "error_type", peewee.CharField(max_length=100, default="")),
        migrator.add_column("usage_event", "incomplete", peewee.BooleanField(default=False)),
        migrator.add_column("usage_event", "ttfb_ms", peewee.DoubleField(null=True)),
        migrator.add_column("usage_event", "reasoning_tokens", peewee.IntegerField(default=0)),
        migrator.add_column("usage_event", "raw_usage", peewee.TextField(default="")),
    )


def migrate_v4(db: peewee.Database) -> None:
    """Per-key limits: requests per minute and requests in flight."""
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("api_key", "rate_limit", peewee.IntegerField(null=True)),
        migrator.add_column("api_key", "concurrency_limit", peewee.IntegerField(null=True)),
    )


def migrate_v7(db: peewee.Database) -> None:
    """Quota-aware pool (#17): each account's last quota reading, and the quota lane on each usage event."""
    from store.models import AccountQuota

    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("usage_event", "quota_claim", peewee.CharField(max_length=64, default="")),
        migrator.add_column("usage_event", "quota_overage", peewee.CharField(max_length=32, default="")),
    )
    with db.bind_ctx([AccountQuota]):
        db.create_tables([AccountQuota])


def migrate_v8(db: peewee.Database) -> None:
    """Cost, budgets and metrics (#20): a cost per usage event, per-key budgets, running totals per key and window."""

    class KeyUsage(peewee.Model):  # frozen: later changes to store.models must not alter this step
        key_id = peewee.IntegerField()
        kind = peewee.CharField(max_length=8)
        starts_at = peewee.DoubleField()
        requests = peewee.BigIntegerField(default=0)
        tokens = peewee.BigIntegerField(default=0)
        cost_usd = peewee.DoubleField(default=0.0)

        class Meta:
            database = db
            table_name = "key_usage"
            indexes = ((("kind", "starts_at", "key_id"), True),)

    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("usage_event", "cost_usd", peewee.DoubleField(null=True)),
        migrator.add_column("api_key", "token_budget", peewee.BigIntegerField(null=True)),
        migrator.add_column("api_key", "cost_budget", peewee.DoubleField(null=True)),
        migrator.add_column("api_key", "budget_window", peewee.CharField(max_length=8, default="month")),
    )
    db.create_tables([KeyUsage])


def migrate_v9(db: peewee.Database) -> None:
    """Translation (#36): which translation served a usage event ("" when native), and keys that may not use it."""
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("usage_event", "translation", peewee.CharField(max_length=32, default="")),
        migrator.add_column("api_key", "translation", peewee.BooleanField(default=True)),
    )


STEPS: list[tuple[int, Callable[[peewee.Database], None]]] = [
    (1, create_v1),
    (2, migrate_v2),
    (3, migrate_v3),
    (4, migrate_v4),
    (7, migrate_v7),
    (8, migrate_v8),  # 5 and 6 were never needed; each step stands alone
    (9, migrate_v9),
]
CURRENT_VERSION = STEPS[-1][0]


def schema_version(db: peewee.Database) -> int:
    """0 for an empty database; raises StoreError for a database that is not Kleis's."""
    tables = set(db.get_tables())
    if "setting" not in tables:
        if tables:
            raise StoreError(
                f"the database holds tables ({', '.join(sorted(tables)[:5])}) but no Kleis schema: "
                "it is not a Kleis store; refusing to touch it"
            )
        return 0
    row = db.execute_sql("SELECT value FROM setting WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise StoreError("the database has a setting table but no Kleis schema version: not a Kleis store")
    return int(row[0])


def upgrade(db: peewee.Database, target: int = CURRENT_VERSION) -> int:
    """Apply every step above the stored version, each in its own transaction. Returns the new version."""
    version = schema_version(db)
    if version > CURRENT_VERSION:
        raise StoreError(f"the store has schema version {version}, newer than this Kleis knows ({CURRENT_VERSION}); upgrade Kleis")
    for step_version, step in STEPS:
        if version < step_version <= target:
            with db.atomic():
                step(db)
                db.execute_sql("DELETE FROM setting WHERE key = 'schema_version'")
                db.execute_sql(f"INSERT INTO setting (key, value) VALUES ('schema_version', {int(step_version)})")
            log.info("store schema migrated to version %d", step_version)
            version = step_version
    return version
