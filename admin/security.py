"""Admin authentication pieces: the session signing key, the TLS-aware cookie, login throttling, secret checks."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from store.db import Store
from store.models import Setting

SESSION_SALT_SETTING = "admin_session_salt"
SESSION_PURPOSE = b"kleis-admin-session-v1"


def session_signing_key(store: Store) -> str:
    """HMAC(store salt, admin secret): unguessable without both the store's secret key and the admin secret.

    The salt is 32 random bytes kept in the store, encrypted with the token cipher, so every Kleis process on
    one store signs alike (a session works on all of them) and the database alone reveals nothing. Changing the
    admin secret changes the key: every session signed before is refused.
    """
    row = Setting.get_or_none(Setting.key == SESSION_SALT_SETTING)
    if row is None:
        value = store.cipher.encrypt(secrets.token_hex(32))
        Setting.insert(key=SESSION_SALT_SETTING, value=value).on_conflict_ignore().execute()
        row = Setting.get(Setting.key == SESSION_SALT_SETTING)  # another process may have won the insert
    salt = store.cipher.decrypt(row.value).encode()
    return hmac.new(salt, SESSION_PURPOSE + b"\0" + store.admin_secret.encode("utf-8"), hashlib.sha256).hexdigest()


# A signed cookie stays valid until it expires, whoever copied it. Each login therefore carries a random session
# id, and logging out records that id (hashed) as ended until the cookie could have expired anyway: a copy of the
# cookie stops working on every process sharing the store, not only in the browser that logged out.
LOGOUT_PREFIX = "admin_logout:"


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def _logout_key(session_id: str) -> str:
    return LOGOUT_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()[:40]


def end_session(session_id: str, lifetime: float, now: float | None = None) -> None:
    now = time.time() if now is None else now
    ended = Setting.select(Setting.key, Setting.value).where(Setting.key.startswith(LOGOUT_PREFIX))
    expired = [row.key for row in ended if _float(row.value) < now]
    if expired:
        Setting.delete().where(Setting.key.in_(expired)).execute()
    Setting.insert(key=_logout_key(session_id), value=repr(now + lifetime)).on_conflict_ignore().execute()


def session_ended(session_id: object) -> bool:
    """True for a logged-out session, and for a session without an id (none is issued without one)."""
    if not isinstance(session_id, str) or not session_id:
        return True
    return Setting.select().where(Setting.key == _logout_key(session_id)).exists()


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def secret_matches(presented: str | None, secret: str) -> bool:
    """Constant-time comparison of a presented admin secret (bytes, so any text compares safely)."""
    if not presented or not secret:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), secret.encode("utf-8"))


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TLSAwareSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions whose cookie is `Secure` whenever the request came over TLS (or always, if configured)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one admin login or bearer check."""

    ok: bool
    retry_after: float = 0.0  # > 0: the address is locked out (answer 429)
    lockout: float = 0.0  # the lockout this failure starts, when the address was not locked before


class LoginThrottle:
    """Per-address backoff after failed admin logins (page or bearer), kept in this process's memory.

    The first `free_attempts` failures cost nothing; each one after that locks the address out for a doubling
    delay (1 s, 2 s, 4 s … `max_delay`). A success clears the address; an address without failures for
    `forget_after` seconds is forgotten.

    A lockout slows guessing without locking the operator out: every local user shares 127.0.0.1, so a lockout that
    refused everything would let any of them keep the operator out. During a lockout one attempt per address at a
    time is checked, after `locked_delay` seconds: the right secret gets in (and clears the lockout), a wrong one
    extends it; further attempts from that address meanwhile are refused unchecked. Guessing from a locked address
    therefore runs at one secret per `locked_delay`, however many connections it opens.
    """

    def __init__(
        self,
        *,
        free_attempts: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        forget_after: float = 900.0,
        max_entries: int = 10000,
        locked_delay: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.locked_delay = locked_delay
        self.sleep = sleep
        self._checking: set[str] = set()  # addresses with a locked attempt being checked
        self.free_attempts = free_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_entries = max_entries
        self.clock = clock
        self._failures: dict[str, tuple[int, float, float]] = {}  # address -> (count, last failure, locked until)
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until this address may try again (0: now)."""
        with self._lock:
            entry = self._entry(address)
            return 0.0 if entry is None else max(0.0, entry[2] - self.clock())

    def failed(self, address: str) -> float:
        """Note a failure; returns the lockout it starts (0 while still within the free attempts)."""
        with self._lock:
            now = self.clock()
            count = (self._entry(address) or (0, now, now))[0] + 1
            over = count - self.free_attempts
            delay = 0.0 if over <= 0 else min(self.max_delay, self.base_delay * 2 ** min(over - 1, 30))
            if address not in self._failures and len(self._failures) >= self.max_entries:
                self._prune(now)
            self._failures[address] = (count, now, now + delay)
            return delay

    def attempt(self, address: str, presented: str | None, matches: Callable[[str | None], bool]) -> Verdict:
        """Check one presented secret (None: none presented, which is no guess) under the throttle."""
        wait = self.retry_after(address)
        if wait <= 0:
            if matches(presented):
                self.succeeded(address)
                return Verdict(True)
            return Verdict(False, lockout=self.failed(address) if presented is not None else 0.0)
        if presented is None or not self._hold(address):
            return Verdict(False, retry_after=wait)
        try:
            self.sleep(self.locked_delay)
            ok = matches(presented)
        finally:
            with self._lock:
                self._checking.discard(address)
        if ok:
            self.succeeded(address)
            return Verdict(True)
        self.failed(address)
        return Verdict(False, retry_after=max(self.retry_after(address), self.locked_delay))

    def _hold(self, address: str) -> bool:
        with self._lock:
            if address in self._checking:
                return False
            self._checking.add(address)
            return True

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _entry(self, address: str) -> tuple[int, float, float] | None:
        entry = self._failures.get(address)
        if entry is not None and self.clock() - entry[1] > self.forget_after and entry[2] <= self.clock():
            del self._failures[address]
            return None
        return entry

    def _prune(self, now: float) -> None:
        for address, (_, last, until) in list(self._failures.items()):
            if now - last > self.forget_after and until <= now:
                del self._failures[address]
        while len(self._failures) >= self.max_entries:  # still full: drop the oldest failures
            oldest = min(self._failures, key=lambda a: self._failures[a][1])
            del self._failures[oldest]


def wait_text(seconds: float) -> str:
    return f"{math.ceil(seconds)} s"
