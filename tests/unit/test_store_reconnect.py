"""The store comes back: a dead connection (PostgreSQL restarted or stopped, a SQLite connection closed under Kleis)
is dropped and opened anew on its next use, reads and transactions that start on it heal, a transaction it dies in
is rolled back whole, and while the server is away connecting is retried with backoff.
Here the parts that need no socket; through listeners: tests/e2e/test_store_reconnect.py."""

from __future__ import annotations

import threading
import time

import peewee
import pytest

from store import reconnect
from store.accounts import TokenSet, upsert_account
from store.db import Store
from store.models import Account, Setting, database


def close_behind_peewees_back() -> None:
    """What a server restart does to the connection peewee holds for this thread."""
    database.obj.connection().close()


def test_a_closed_sqlite_connection_is_opened_again(store: Store) -> None:
    upsert_account("claude", "one", TokenSet("a", "r", time.time() + 60), store.cipher)
    close_behind_peewees_back()
    assert Account.select().count() == 1  # a read
    close_behind_peewees_back()
    with database.atomic():  # a transaction that starts on the dead connection
        Setting.insert(key="k", value="v").execute()
    assert Setting.get(Setting.key == "k").value == "v"
    assert database.obj.reconnects == 2


def test_a_transaction_whose_connection_dies_is_rolled_back_whole_and_the_next_one_works(store: Store) -> None:
    with pytest.raises(peewee.DatabaseError) as failed:
        with database.atomic():
            Setting.insert(key="half", value="1").execute()
            close_behind_peewees_back()
            Setting.insert(key="other", value="2").execute()
    assert reconnect.is_dead(failed.value)
    assert Setting.get_or_none(Setting.key == "half") is None  # nothing half-written
    with database.atomic():
        Setting.insert(key="after", value="3").execute()
    assert Setting.get(Setting.key == "after").value == "3"


def test_each_thread_heals_its_own_connection(store: Store) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            Setting.select().count()
            close_behind_peewees_back()
            Setting.select().count()
        except BaseException as exc:  # pragma: no cover - shown by the assert
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []


def test_statement_errors_are_not_taken_for_a_dead_connection(store: Store) -> None:
    Setting.insert(key="dup", value="1").execute()
    with pytest.raises(peewee.IntegrityError) as duplicate:
        Setting.insert(key="dup", value="2").execute()
    assert not reconnect.is_dead(duplicate.value)
    with pytest.raises(peewee.OperationalError) as syntax:
        database.execute_sql("SELEKT 1")
    assert not reconnect.is_dead(syntax.value) and database.obj.reconnects == 0
