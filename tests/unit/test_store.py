"""The store: creation with modes, schema migration from version 1, foreign databases, secret key check."""

from __future__ import annotations

import sqlite3
import stat
import time

import peewee
import pytest

from core.exceptions import ConfigError, SecretKeyError, StoreError
from store import migrations
from store.crypto import new_secret_key
from store.db import open_store
from tests.support.env import make_config


def test_fresh_store_is_private_and_current(tmp_path) -> None:
    config = make_config(tmp_path / "data")
    store = open_store(config)
    try:
        assert stat.S_IMODE(config.data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((config.data_dir / "kleis.db").stat().st_mode) == 0o600
        assert migrations.schema_version(store.db) == migrations.CURRENT_VERSION
        assert store.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {"account", "api_key", "o_auth_state", "usage_event", "setting", "account_event"} <= set(store.db.get_tables())
    finally:
        store.close()


def test_generated_secrets_are_0600_and_stable(tmp_path) -> None:
    config = make_config(tmp_path / "data", secret_key="", admin_secret="")
    first = open_store(config)
    first.close()
    second = open_store(config)
    second.close()
    assert first.admin_secret_created and not second.admin_secret_created
    assert first.admin_secret == second.admin_secret
    for name in ("secret.key", "admin.secret"):
        assert stat.S_IMODE((config.data_dir / name).stat().st_mode) == 0o600


def test_migration_from_the_first_schema_keeps_data(tmp_path) -> None:
    path = tmp_path / "old.db"
    db = peewee.SqliteDatabase(str(path))
    migrations.upgrade(db, target=1)
    now = time.time()
    db.execute_sql(
        "INSERT INTO account (provider, label, identity, status, status_reason, status_changed_at, is_primary,"
        " access_token, refresh_token, token_version, last_refresh_result, metadata, created_at, updated_at)"
        " VALUES ('claude', 'work', 'uuid-1', 'active', '', ?, 1, 'enc-a', 'enc-r', 3, '', '{}', ?, ?)",
        (now, now, now),
    )
    db.execute_sql(
        "INSERT INTO usage_event (request_id, created_at, provider, model, status, streamed, input_tokens,"
        " output_tokens, cache_read_tokens, cache_write_tokens) VALUES ('r1', ?, 'claude', 'm', 200, 1, 10, 20, 30, 40)",
        (now,),
    )
    db.execute_sql(
        "INSERT INTO api_key (public_id, key_hash, name, providers, models, created_at) VALUES ('kl_abcdefgh', ?, 'old', '[]', '[]', ?)",
        ("0" * 64, now),
    )
    assert migrations.schema_version(db) == 1
    assert migrations.upgrade(db) == migrations.CURRENT_VERSION
    account = db.execute_sql("SELECT identity, token_version, access_token, refresh_lease_until FROM account").fetchone()
    assert account == ("uuid-1", 3, "enc-a", None)
    usage = db.execute_sql(
        "SELECT input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, protocol, incomplete FROM usage_event"
    ).fetchone()
    assert usage == (10, 20, 30, 40, 0, "", 0)
    assert "account_event" in db.get_tables()
    assert db.execute_sql("SELECT name, rate_limit, concurrency_limit FROM api_key").fetchall() == [("old", None, None)]
    assert migrations.upgrade(db) == migrations.CURRENT_VERSION  # idempotent
    db.close()


def test_foreign_sqlite_database_is_refused_untouched(tmp_path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    before = path.read_bytes()
    config = make_config(tmp_path / "data", database_url=f"sqlite:///{path}")
    with pytest.raises(StoreError) as info:
        open_store(config)
    assert "not a Kleis store" in str(info.value)
    assert path.read_bytes() == before


def test_corrupted_database_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    config = make_config(tmp_path / "data", database_url=f"sqlite:///{path}")
    with pytest.raises(StoreError) as info:
        open_store(config)
    assert "cannot open the store" in str(info.value)


def test_newer_schema_is_refused(tmp_path) -> None:
    config = make_config(tmp_path / "data")
    store = open_store(config)
    store.db.execute_sql("UPDATE setting SET value = '999' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(StoreError) as info:
        open_store(config)
    assert "newer than this Kleis knows" in str(info.value)


def test_wrong_secret_key_is_refused_at_open(tmp_path) -> None:
    config = make_config(tmp_path / "data")
    open_store(config).close()
    with pytest.raises(SecretKeyError) as info:
        open_store(config.replace(secret_key=new_secret_key()))
    assert "does not match" in str(info.value)


def test_unusable_data_dir(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as info:
        open_store(make_config(blocker / "data"))
    assert "KLEIS_DATA_DIR" in str(info.value)


def test_a_transaction_that_reads_first_waits_for_a_writer_instead_of_failing(store) -> None:
    """WAL mode: a deferred transaction that read, then another connection committed a write, cannot upgrade to a
    writer ("database is locked" at once, busy_timeout cannot help). Kleis's transactions begin IMMEDIATE."""
    import threading

    from store.accounts import TokenSet, upsert_account
    from store.models import Account, database

    row, _ = upsert_account("claude", "race", TokenSet("a", "r", time.time() + 3600), store.cipher)
    have_read, wrote, errors = threading.Event(), threading.Event(), []

    def other_writer() -> None:
        have_read.wait(5)
        try:
            Account.update(label="other").where(Account.id == row.id).execute()
        except Exception as exc:
            errors.append(exc)
        wrote.set()

    writer = threading.Thread(target=other_writer)
    writer.start()
    with database.atomic():
        Account.get_by_id(row.id)  # the read that starts a deferred transaction's snapshot
        have_read.set()
        wrote.wait(0.5)  # with BEGIN IMMEDIATE the other writer waits for us; deferred, it commits now
        Account.update(label="ours").where(Account.id == row.id).execute()
    writer.join(15)
    assert errors == [] and wrote.is_set()
    assert Account.get_by_id(row.id).label == "other"  # it wrote after our commit, not between our read and write
