"""Upstream tokens that never sit in a flow: flows carry an opaque reference, swapped for the token on the wire.

mitmproxy keeps flows in memory and mitmweb shows, exports and dumps them at any moment, so a token set in
`flow.request.headers` is visible while the request is in flight. Instead the addon sets
`Authorization: Bearer kleis-secret-ref-<hex>`, and the HTTP/1 request head that mitmproxy assembles for the
upstream (`mitmproxy.net.http.http1.assemble_request_head`, used only for requests to servers; patched in
addons.compat) has the reference replaced by the token held here.

Each reference is bound to the upstream host and port Kleis routed its request to, and is swapped only in a head
written on a connection to exactly that address, directly (not through an upstream proxy): an option changed in
the debug UI, a replay or an edited flow cannot hand the token to another host. A reference is released when its
flow ends; a replayed, leftover or misdirected reference goes out unchanged and the upstream refuses it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import re
import secrets
import threading

log = logging.getLogger(__name__)

REF_PREFIX = "kleis-secret-ref-"
_REF_IN_AUTH_LINE = re.compile(rb"(?im)^(authorization:[^\r\n]*?)(" + REF_PREFIX.encode() + rb"[0-9a-f]{32})")


@dataclasses.dataclass(frozen=True)
class Peer:
    """Where a request head is about to be written: the server connection's address, and its upstream proxy."""

    address: tuple[str, int] | None
    via: object | None = None


# Set by the patched HTTP/1 client layer (addons.compat) while it assembles a request head for its connection.
current_peer: contextvars.ContextVar[Peer | None] = contextvars.ContextVar("kleis_upstream_peer", default=None)


@dataclasses.dataclass
class _Entry:
    secret: str
    destination: tuple[str, int] | None = None


class SecretVault:
    """References to secrets, alive while their request is in flight, each good for one destination."""

    def __init__(self) -> None:
        self._secrets: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def put(self, secret: str, destination: tuple[str, int] | None = None) -> str:
        ref = REF_PREFIX + secrets.token_hex(16)
        with self._lock:
            self._secrets[ref] = _Entry(secret, _normalised(destination))
        return ref

    def bind(self, ref: str, host: str, port: int) -> None:
        """The one upstream address `ref` may be swapped for (the request's own, once Kleis has routed it)."""
        with self._lock:
            entry = self._secrets.get(ref)
            if entry is not None:
                entry.destination = _normalised((host, port))

    def get(self, ref: str) -> str | None:
        entry = self._secrets.get(ref)
        return entry.secret if entry is not None else None

    def release(self, ref: str | None) -> None:
        if ref:
            with self._lock:
                self._secrets.pop(ref, None)

    def __len__(self) -> int:
        return len(self._secrets)

    def substitute(self, head: bytes, peer: Peer | None = None) -> bytes:
        """Swap references in the Authorization line of an assembled request head, for their own destination only."""
        if REF_PREFIX.encode() not in head:
            return head
        peer = peer if peer is not None else current_peer.get()
        address = _normalised(peer.address) if peer is not None and peer.via is None else None

        def swap(match: re.Match[bytes]) -> bytes:
            entry = self._secrets.get(match.group(2).decode())
            if entry is None:
                return match.group(0)
            if address is None or entry.destination != address:
                log.warning(
                    "an upstream token was not sent: its request goes to %s, not to %s where Kleis routed it",
                    _describe(peer),
                    _describe(Peer(entry.destination)),
                )
                return match.group(0)
            return match.group(1) + entry.secret.encode("latin-1")

        return _REF_IN_AUTH_LINE.sub(swap, head)


def _normalised(address: tuple[str, int] | None) -> tuple[str, int] | None:
    return None if address is None else (address[0].lower().rstrip("."), int(address[1]))


def _describe(peer: Peer | None) -> str:
    if peer is None or peer.address is None:
        return "an unknown address"
    where = f"{peer.address[0]}:{peer.address[1]}"
    return f"{where} through the upstream proxy {peer.via}" if peer.via is not None else where


vault = SecretVault()
