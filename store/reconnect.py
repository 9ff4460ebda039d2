"""A database connection that comes back: after a PostgreSQL restart (or a SQLite connection that reopening cures),
every store user — usage writer, follower, quota and budget sync, leases, admin, CLI — reconnects on its next use.

Peewee keeps one connection per thread and never notices that the server closed it: after `pg_ctl restart` every
later query failed with "connection already closed" until the process restarted. Here a statement, or a BEGIN, that
fails because its connection is dead (`is_dead`) drops that connection; outside a transaction it is retried once on a
new one, so a read or a whole transaction that starts on a dead connection heals without its caller knowing (BEGIN
goes to the server: peewee runs PostgreSQL in autocommit mode and SQLite with BEGIN IMMEDIATE). A connection that
dies in the middle of a transaction fails that transaction — its changes are rolled back, nothing half-written — and
its caller retries its unit of work as it does for any store error (the usage writer keeps its batch). While the
server is down, new connections are tried at most once per backoff step (0.25 s, doubling to 2 s) for the whole
process, so a hundred callers do not each wait on a refused connect.

Why this and not a fresh connection per unit of work: the callers stay as they are (a store user cannot forget to
open one), and the request path's background loops (the follower polls four times a second) keep their one
connection instead of paying a connect each time. peewee's own `ReconnectMixin` is the same idea for MySQL; it does
not know PostgreSQL's or SQLite's errors and leaves the connection open when a transaction fails on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import peewee

log = logging.getLogger(__name__)

# What a dead connection says (psycopg2, psycopg 3, sqlite3), lower-cased. A statement's own errors (a constraint, a
# syntax error, "database is locked") are not here: reconnecting does not cure them.
DEAD_MARKERS = (
    "connection already closed",
    "server closed the connection",
    "terminating connection",
    "the connection is closed",
    "connection not open",
    "no connection to the server",
    "could not connect to server",
    "connection to server at",
    "could not receive data from server",
    "could not send data to server",
    "ssl syscall error",
    "eof detected",
    "the database system is starting up",
    "the database system is shutting down",
    "cannot operate on a closed database",
    "disk i/o error",
    "unable to open database file",
    "attempt to write a readonly database",
)
# SQLSTATE classes and codes of a lost connection: 08 (connection exception), 57P01-03 (admin shutdown, crash
# shutdown, cannot connect now).
DEAD_SQLSTATES = ("57P01", "57P02", "57P03")

DRIVERS = ("psycopg2", "psycopg", "sqlite3")  # their own error classes, before peewee wraps them

BACKOFF_FIRST = 0.25
BACKOFF_MAX = 2.0

R = TypeVar("R")


def error_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the errors it was raised while handling, newest first. peewee re-raises a driver's error as its own,
    the original as context; a failed statement inside `atomic()` surfaces as the ROLLBACK's own error ("cannot
    rollback - no transaction is active": SQLite already rolled back), with the statement's error as its context."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def unavailable(exc: BaseException) -> bool:
    """True when `exc` is the backoff's own refusal (no connection was tried)."""
    return any(isinstance(error, StoreUnavailable) for error in error_chain(exc))


def is_dead(exc: BaseException) -> bool:
    """True when `exc` (or what it was raised from) says the connection, not the statement, is the problem."""
    for current in error_chain(exc):
        code = getattr(current, "pgcode", None) or getattr(current, "sqlstate", None)
        if isinstance(code, str) and (code.startswith("08") or code in DEAD_SQLSTATES):
            return True
        if isinstance(current, (peewee.InterfaceError, peewee.DatabaseError)) or type(current).__module__.split(".")[0] in DRIVERS:
            text = str(current).lower()
            if any(marker in text for marker in DEAD_MARKERS):
                return True
    return False


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class StoreUnavailable(peewee.OperationalError):
    """The store could not be reached a moment ago; the next attempt waits for the backoff step."""


_Base: Any = peewee.Database if TYPE_CHECKING else object


class Reconnecting(_Base):  # type: ignore[misc]
    """Mixed in before a peewee Database class (see `reconnecting`)."""

    _backoff_lock: threading.Lock
    _retry_at: float
    _delay: float
    _last_error: str
    _was_down: bool
    reconnects: int

    def _init_reconnect(self) -> None:
        self._backoff_lock = threading.Lock()
        self._retry_at = 0.0
        self._delay = 0.0
        self._last_error = ""
        self._was_down = False
        self.reconnects = 0

    # -- connecting, with one backoff for the whole process ---------------------------------------------------
    def connect(self, reuse_if_open: bool = False) -> bool:
        base: Any = super()
        if not self.is_closed():
            return bool(base.connect(reuse_if_open))
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            raise StoreUnavailable(f"the store is unreachable ({self._last_error}); the next try is in {wait:.1f}s")
        try:
            opened = bool(base.connect(reuse_if_open))
        except peewee.DatabaseError as exc:
            self._connect_failed(exc)
            raise
        if self._was_down:
            with self._backoff_lock:
                was_down, self._was_down, self._delay = self._was_down, False, 0.0
            if was_down:
                log.warning("the store is reachable again: connected anew")
        return opened

    def _connect_failed(self, exc: BaseException) -> None:
        with self._backoff_lock:
            self._delay = min(BACKOFF_MAX, self._delay * 2 if self._delay else BACKOFF_FIRST)
            self._retry_at = time.monotonic() + self._delay
            self._last_error = first_line(exc)
            first = not self._was_down
            self._was_down = True
        if first:
            log.warning("cannot connect to the store (%s); retrying with backoff up to %.0fs", self._last_error, BACKOFF_MAX)

    # -- statements ---------------------------------------------------------------------------------------------
    def execute_sql(self, sql: str, params: Any = None) -> Any:
        base: Any = super()
        return self._retrying(base.execute_sql, sql, params)

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        base: Any = super()
        return self._retrying(base.begin, *args, **kwargs)

    def rollback(self) -> Any:
        """A rollback on a dead connection drops it: the server has already rolled the transaction back."""
        base: Any = super()
        try:
            return base.rollback()
        except Exception as exc:
            if not is_dead(exc) and not self.is_closed():
                raise
            self.drop_connection()
            return None

    def _retrying(self, run: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        try:
            return run(*args, **kwargs)
        except Exception as exc:
            if unavailable(exc) or not is_dead(exc):
                raise
            if self.in_transaction():
                raise  # the transaction is lost: its rollback drops the connection, its caller retries the unit
            self.drop_connection()
            self.reconnects += 1
            log.info("the store connection was lost (%s); reconnecting", first_line(exc))
            return run(*args, **kwargs)

    def drop_connection(self) -> None:
        """Forget this thread's connection (closing it if it still can be); the next use opens a new one."""
        base: Any = super()
        try:
            base.close()
        except Exception:
            self._state.reset()


_classes: dict[type[peewee.Database], type[peewee.Database]] = {}


def reconnecting(database_class: type[peewee.Database]) -> type[peewee.Database]:
    """`database_class` with `Reconnecting` mixed in (one class per base, so isinstance checks keep working)."""
    if database_class not in _classes:

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            database_class.__init__(self, *args, **kwargs)
            self._init_reconnect()

        _classes[database_class] = type(f"Reconnecting{database_class.__name__}", (Reconnecting, database_class), {"__init__": __init__})
    return _classes[database_class]
