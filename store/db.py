"""Opening the store: data directory, database (SQLite WAL or PostgreSQL), schema, secrets."""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse import db_url

from core.config import Config
from core.exceptions import ConfigError, SecretKeyError, StoreError
from store import migrations
from store.crypto import TokenCipher, new_secret_key
from store.models import ALL_MODELS, ChangeCounter, Setting, database
from store.reconnect import error_chain, reconnecting

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 10000,
    "foreign_keys": 1,
}
# Every transaction Kleis opens writes. A deferred BEGIN reads first and upgrades to a writer later; in WAL mode that
# upgrade fails at once with "database is locked" (busy_timeout cannot help) when another connection committed a
# write in between. BEGIN IMMEDIATE takes the write lock at the start, so a transaction waits its turn instead.
SQLITE_LOCK_TYPE = "IMMEDIATE"
CANARY_PLAINTEXT = "kleis-secret-key-check"


@dataclasses.dataclass
class Store:
    """An open store: the database bound to the models, and the token cipher."""

    db: peewee.Database
    cipher: TokenCipher
    config: Config
    admin_secret: str
    admin_secret_created: bool = False

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()


def ensure_data_dir(path: Path) -> Path:
    """Create the data directory with mode 0700, or fail clearly when it is unusable."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"KLEIS_DATA_DIR: cannot create {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise ConfigError(f"KLEIS_DATA_DIR: {path} is not a directory")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"KLEIS_DATA_DIR: {path} is not readable and writable by this user")
    return path


def data_dir_too_open(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def _read_secret(path: Path) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{path} is empty; delete it to generate a new secret")
    return value


def _read_or_create_secret(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """A secret kept in a 0600 file of the data dir; created on first use. Returns (value, created)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path), False
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    value = make()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True


def _create_private_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (its -wal and -shm files copy that mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"KLEIS_DATABASE_URL: cannot create {path}: {exc.strerror}") from None


def connect_database(url: str) -> peewee.Database:
    """A peewee database for a KLEIS_DATABASE_URL (not yet connected)."""
    if url.startswith("sqlite:"):
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if path == ":memory:":  # tests only: configuration refuses it
            return peewee.SqliteDatabase(":memory:", pragmas=SQLITE_PRAGMAS, lock_type=SQLITE_LOCK_TYPE)
        if not path:
            raise ConfigError("KLEIS_DATABASE_URL: a SQLite URL is sqlite:///<path>")
        _create_private_file(Path(path))
        return reconnecting(peewee.SqliteDatabase)(path, pragmas=SQLITE_PRAGMAS, lock_type=SQLITE_LOCK_TYPE)
    try:
        db_url.connect(url)  # refuses an unknown scheme or a URL without a database name
        parameters = db_url.parse(url)
        database: peewee.Database = reconnecting(db_url.schemes[urlparse(url).scheme])(parameters.pop("database"), **parameters)
        return database
    except Exception as exc:  # playhouse raises bare exceptions for unknown schemes
        raise ConfigError(f"KLEIS_DATABASE_URL: cannot use this URL: {exc}") from None


def open_store(config: Config, *, migrate: bool = True) -> Store:
    """Open (and by default create or migrate) the store that `config` names."""
    ensure_data_dir(config.data_dir)
    admin_secret, admin_created = config.admin_secret, False
    if not admin_secret:
        admin_secret, admin_created = _read_or_create_secret(config.data_dir / "admin.secret", lambda: secrets.token_urlsafe(24))

    url = config.effective_database_url
    if url.startswith("sqlite:///"):
        _precheck_sqlite(Path(url[len("sqlite:///") :]))
    db = connect_database(url)
    try:
        db.connect(reuse_if_open=True)
        database.initialize(db)
        canary = _stored_canary(db)
        cipher = TokenCipher(_secret_key(config, canary is not None, url))
        if canary is not None:
            verify_canary(cipher, canary)  # before any migration touches a store this key cannot read
        version = migrations.upgrade(db) if migrate else migrations.schema_version(db)
        if version != migrations.CURRENT_VERSION:
            raise StoreError(f"the store has schema version {version}; run `python kleis.py serve` to migrate")
        check_secret_key(cipher)
        if admin_created:  # the next `serve` shows it, whichever command created it
            Setting.insert(key=ADMIN_SECRET_UNSHOWN, value="1").on_conflict_ignore().execute()
    except peewee.DatabaseError as exc:
        db.close()
        raise StoreError(f"cannot open the store at {redact_url(config.effective_database_url)}: {exc}") from None
    except Exception:
        db.close()
        raise
    return Store(db=db, cipher=cipher, config=config, admin_secret=admin_secret, admin_secret_created=admin_created)


ADMIN_SECRET_UNSHOWN = "admin_secret_unshown"


def take_admin_secret_announcement() -> bool:
    """True once after a command generated the admin secret file: the caller prints it (serve, debug)."""
    return bool(Setting.delete().where(Setting.key == ADMIN_SECRET_UNSHOWN).execute())


def _stored_canary(db: peewee.Database) -> str | None:
    """The key check value of an existing store (None for a new one)."""
    if not db.table_exists("setting"):
        return None
    row = Setting.get_or_none(Setting.key == "secret_canary")
    return None if row is None else row.value


def _secret_key(config: Config, store_has_data: bool, url: str) -> str:
    if config.secret_key:
        return config.secret_key
    path = config.data_dir / "secret.key"
    if store_has_data and not path.exists():
        # A new key could never read the stored tokens: say what is missing instead of writing a useless key.
        raise SecretKeyError(
            f"{path} is missing, but the store at {redact_url(url)} was written with a key: "
            "restore the file or set KLEIS_SECRET_KEY to that key"
        )
    return _read_or_create_secret(path, new_secret_key)[0]


def _precheck_sqlite(path: Path) -> None:
    """Look at an existing SQLite file read-only, so a foreign database is refused untouched."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from None
    if tables and "setting" not in tables:
        raise StoreError(
            f"{path} holds tables ({', '.join(sorted(tables)[:5])}) but no Kleis schema: it is not a Kleis store; refusing to touch it"
        )


def check_secret_key(cipher: TokenCipher) -> None:
    """Refuse a key that differs from the one the store was written with (a check value)."""
    row = Setting.get_or_none(Setting.key == "secret_canary")
    if row is None:
        Setting.insert(key="secret_canary", value=cipher.encrypt(CANARY_PLAINTEXT)).on_conflict_ignore().execute()
        return
    verify_canary(cipher, row.value)


def verify_canary(cipher: TokenCipher, canary: str) -> None:
    try:
        ok = cipher.decrypt(canary) == CANARY_PLAINTEXT
    except SecretKeyError:
        ok = False
    if not ok:
        raise SecretKeyError(
            "KLEIS_SECRET_KEY does not match the key this store was written with; set the original key (tokens cannot be read without it)"
        )


def redact_url(url: str) -> str:
    """A database URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


# How a full disk reads: SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100) and the OS's ENOSPC.
DISK_FULL_MARKERS = ("database or disk is full", "no space left on device", "could not extend file", "disk full")


def describe_store_error(exc: BaseException) -> str:
    """What went wrong with a write, in words: "the disk is full (…)", else the first error raised."""
    chain = error_chain(exc)
    for error in chain:
        if getattr(error, "pgcode", None) == "53100" or any(marker in str(error).lower() for marker in DISK_FULL_MARKERS):
            return f"the disk is full ({error})"
    return str(chain[-1]) or type(chain[-1]).__name__


def bump(name: str) -> None:
    """Tell every process's cache that `name` (keys, accounts) changed."""
    updated = ChangeCounter.update(value=ChangeCounter.value + 1).where(ChangeCounter.name == name).execute()
    if not updated:
        ChangeCounter.insert(name=name, value=1).on_conflict(
            conflict_target=[ChangeCounter.name], update={ChangeCounter.value: ChangeCounter.value + 1}
        ).execute()


def counters() -> dict[str, int]:
    return {row.name: row.value for row in ChangeCounter.select()}


__all__ = ["Store", "open_store", "connect_database", "bump", "counters", "ALL_MODELS"]
